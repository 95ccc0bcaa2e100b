/**
 * kdbush's `finish()` — the kd-sort of its ids and coordinates — done a piece at a time, so
 * indexing the offline data set (~120 ms in one go) never holds the event loop for more than
 * one median selection (~10 ms for the first, the largest). It leaves exactly the layout
 * kdbush's own sort leaves: the same selections, in another order that touches the same
 * disjoint ranges. The selection is kdbush 4.1.0's (ISC licence, © Vladimir Agafonkin).
 *
 * Owns: the order of a kd-tree's items. Must not know: what the items are, or files.
 */

/** One kd-sort of `ids` and `coords` (x, y pairs), stepped with {@link KdSort.step}. */
export class KdSort {
  readonly #ids: Uint16Array | Uint32Array;
  readonly #coords: Float64Array;
  readonly #nodeSize: number;
  /** Ranges still to sort: left, right, axis, three numbers each. */
  readonly #pending: number[];

  /** Sorts items `0 … count - 1` of `ids` and `coords` as kdbush's index with `nodeSize`. */
  constructor(
    ids: Uint16Array | Uint32Array,
    coords: Float64Array,
    count: number,
    nodeSize: number,
  ) {
    this.#ids = ids;
    this.#coords = coords;
    this.#nodeSize = nodeSize;
    this.#pending = [0, count - 1, 0];
  }

  /**
   * Sorts ranges until about `budgetMs` has passed (always at least one); true when the
   * whole sort is done.
   *
   * @example
   * ```ts
   * const sort = new KdSort(index.ids, index.coords, index.numItems, index.nodeSize);
   * while (!sort.step(5)) await new Promise((resolve) => setTimeout(resolve, 0));
   * ```
   */
  step(budgetMs: number): boolean {
    const startMs = performance.now();
    const pending = this.#pending;
    while (pending.length > 0) {
      const axis = pending.pop()!;
      const right = pending.pop()!;
      const left = pending.pop()!;
      if (right - left <= this.#nodeSize) continue;
      const middle = (left + right) >> 1;
      select(this.#ids, this.#coords, middle, left, right, axis);
      pending.push(left, middle - 1, 1 - axis, middle + 1, right, 1 - axis);
      if (performance.now() - startMs >= budgetMs) break;
    }
    return pending.length === 0;
  }
}

/**
 * Floyd-Rivest selection, as in kdbush: orders the items of `left … right` so that those
 * before `k` are not greater than item `k` on `axis`, and those after not smaller.
 */
function select(
  ids: Uint16Array | Uint32Array,
  coords: Float64Array,
  k: number,
  left: number,
  right: number,
  axis: number,
): void {
  while (right > left) {
    if (right - left > 600) {
      const n = right - left + 1;
      const m = k - left + 1;
      const z = Math.log(n);
      const s = 0.5 * Math.exp(2 * z / 3);
      const sd = 0.5 * Math.sqrt(z * s * (n - s) / n) * (m - n / 2 < 0 ? -1 : 1);
      const newLeft = Math.max(left, Math.floor(k - m * s / n + sd));
      const newRight = Math.min(right, Math.floor(k + (n - m) * s / n + sd));
      select(ids, coords, k, newLeft, newRight, axis);
    }
    const t = coords[2 * k + axis];
    let i = left;
    let j = right;
    swapItem(ids, coords, left, k);
    if (coords[2 * right + axis] > t) swapItem(ids, coords, left, right);
    while (i < j) {
      swapItem(ids, coords, i, j);
      i++;
      j--;
      while (coords[2 * i + axis] < t) i++;
      while (coords[2 * j + axis] > t) j--;
    }
    if (coords[2 * left + axis] === t) {
      swapItem(ids, coords, left, j);
    } else {
      j++;
      swapItem(ids, coords, j, right);
    }
    if (j <= k) left = j + 1;
    if (k <= j) right = j - 1;
  }
}

function swapItem(
  ids: Uint16Array | Uint32Array,
  coords: Float64Array,
  i: number,
  j: number,
): void {
  const id = ids[i];
  ids[i] = ids[j];
  ids[j] = id;
  const x = coords[2 * i];
  coords[2 * i] = coords[2 * j];
  coords[2 * j] = x;
  const y = coords[2 * i + 1];
  coords[2 * i + 1] = coords[2 * j + 1];
  coords[2 * j + 1] = y;
}
