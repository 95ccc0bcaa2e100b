/**
 * The nearest places to a point on the offline data set's kd-tree (kdbush's layout, sorted
 * by offline_kdsort.ts): a depth-first search, nearer half first, that keeps the best few in
 * a small sorted list and skips every part of the tree that cannot beat them. It allocates
 * nothing per place or per tree node, unlike geokdbush's `around` (a priority queue of
 * objects), whose answers it gives: distances are geokdbush's haversine operation for
 * operation, its radius test too, and its lower bound for a box of the tree.
 *
 * Owns: the search and the distance measure. Must not know: the data file, place names,
 * place_ids (ties are ordered by a function passed in), or the Places body.
 */

/** The mean Earth radius geokdbush measures with; distances here use the same one. */
const EARTH_RADIUS_KM = 6371;

const RADIANS_PER_DEGREE = Math.PI / 180;

/**
 * How much a box's lower bound may exceed the distance bound before the box is skipped, as
 * a fraction: the bound is computed by another formula than a place's distance, so a place
 * on a box's edge could come out a rounding error below it. Skipping less never changes an
 * answer; it only looks at a few more places.
 */
const BOX_BOUND_SLACK = 1e-9;

/** A kd-tree over places: kdbush's sorted `ids` and `coords`, and its node size. */
export interface PlacesTree {
  /** Tree position → place number. */
  ids: Uint32Array;
  /** Longitude, latitude (degrees) of the place at each tree position, interleaved. */
  coords: Float64Array;
  /** The most places a leaf holds. */
  nodeSize: number;
}

/** The places found by {@link nearestPlaces}, nearest first. */
export interface NearestPlaces {
  /** Tree positions (`ids[position]` is the place number; `coords` hold its location). */
  positions: number[];
  /** The great-circle distance of each, in km. */
  distancesKm: number[];
}

/**
 * The up to `countMax` places within `radiusKm` of (latitude, longitude), nearest first;
 * places at equal distances in the order of `tieOrder` (of tree positions), the last ones
 * left out if a tie straddles `countMax`. A place is within the radius when both geokdbush's
 * test (haversine against the radius's haversine) and its distance in km say so.
 *
 * @example
 * ```ts
 * const { positions } = nearestPlaces(tree, 34.06893, -118.445127, 10, 20, (a, b) => a - b);
 * const placeNumbers = positions.map((position) => tree.ids[position]);
 * ```
 */
export function nearestPlaces(
  tree: PlacesTree,
  latitude: number,
  longitude: number,
  radiusKm: number,
  countMax: number,
  tieOrder: (position1: number, position2: number) => number,
): NearestPlaces {
  const { ids, coords, nodeSize } = tree;
  const found: NearestPlaces = { positions: [], distancesKm: [] };
  const foundHaversines: number[] = [];
  const count = ids.length;
  if (count === 0 || countMax <= 0) return found;
  const cosLatitude = Math.cos(latitude * RADIANS_PER_DEGREE);
  const radiusHaversine = haverSin(radiusKm / EARTH_RADIUS_KM);
  // Beyond this difference of latitude (degrees), the latitude term of the haversine alone
  // is past the radius's; with a margin far above rounding, so no place in range is lost.
  const latitudeDifferenceMax = (1 + BOX_BOUND_SLACK) * 2 *
      Math.asin(Math.sqrt(Math.min(1, radiusHaversine))) / RADIANS_PER_DEGREE + 1e-9;

  // Considers the place at `position`: inserts it in `found` if it is in range and beats the
  // last one kept (or there is room).
  const consider = (position: number) => {
    const placeLatitude = coords[2 * position + 1];
    if (Math.abs(latitude - placeLatitude) > latitudeDifferenceMax) return;
    const latitudeHaversine = haverSin((latitude - placeLatitude) * RADIANS_PER_DEGREE);
    // The latitude term alone already exceeds the radius: the whole haversine would.
    if (latitudeHaversine > radiusHaversine) return;
    const haversine = cosLatitude * Math.cos(placeLatitude * RADIANS_PER_DEGREE) *
        haverSin((longitude - coords[2 * position]) * RADIANS_PER_DEGREE) +
      latitudeHaversine;
    if (haversine > radiusHaversine) return;
    const distanceKm = distanceKmFromHaversine(haversine);
    if (distanceKm > radiusKm) return;
    const { positions, distancesKm } = found;
    let at = positions.length;
    while (
      at > 0 &&
      (distanceKm < distancesKm[at - 1] ||
        (distanceKm === distancesKm[at - 1] &&
          tieOrder(position, positions[at - 1]) < 0))
    ) at--;
    if (at >= countMax) return;
    positions.splice(at, 0, position);
    distancesKm.splice(at, 0, distanceKm);
    foundHaversines.splice(at, 0, haversine);
    if (positions.length > countMax) {
      positions.pop();
      distancesKm.pop();
      foundHaversines.pop();
    }
  };

  // Nodes still to visit, NODE_FIELDS numbers each: left, right, axis, box lower bound and
  // the box (min lng, min lat, max lng, max lat). Depth-first, so at most two per level.
  const stack = new Float64Array(NODE_FIELDS * 2 * (Math.ceil(Math.log2(count + 1)) + 2));
  let top = 0;
  const push = (
    left: number,
    right: number,
    axis: number,
    minLng: number,
    minLat: number,
    maxLng: number,
    maxLat: number,
  ) => {
    if (left > right) return;
    const bound = boxHaversine(longitude, latitude, cosLatitude, minLng, minLat, maxLng, maxLat);
    if (bound > radiusHaversine * (1 + BOX_BOUND_SLACK)) return;
    stack[top] = left;
    stack[top + 1] = right;
    stack[top + 2] = axis;
    stack[top + 3] = bound;
    stack[top + 4] = minLng;
    stack[top + 5] = minLat;
    stack[top + 6] = maxLng;
    stack[top + 7] = maxLat;
    top += NODE_FIELDS;
  };
  push(0, count - 1, 0, -180, -90, 180, 90);
  while (top > 0) {
    top -= NODE_FIELDS;
    const left = stack[top];
    const right = stack[top + 1];
    const axis = stack[top + 2];
    const bound = stack[top + 3];
    const minLng = stack[top + 4];
    const minLat = stack[top + 5];
    const maxLng = stack[top + 6];
    const maxLat = stack[top + 7];
    if (
      found.positions.length === countMax &&
      bound > foundHaversines[countMax - 1] * (1 + BOX_BOUND_SLACK)
    ) continue;
    if (right - left <= nodeSize) {
      for (let position = left; position <= right; position++) consider(position);
      continue;
    }
    const middle = (left + right) >> 1;
    consider(middle);
    const middleLng = coords[2 * middle];
    const middleLat = coords[2 * middle + 1];
    const nextAxis = 1 - axis;
    // The half holding the query point goes on the stack last, to be searched first.
    const queryFirst = axis === 0 ? longitude < middleLng : latitude < middleLat;
    const pushLow = () =>
      push(
        left,
        middle - 1,
        nextAxis,
        minLng,
        minLat,
        axis === 0 ? middleLng : maxLng,
        axis === 1 ? middleLat : maxLat,
      );
    const pushHigh = () =>
      push(
        middle + 1,
        right,
        nextAxis,
        axis === 0 ? middleLng : minLng,
        axis === 1 ? middleLat : minLat,
        maxLng,
        maxLat,
      );
    if (queryFirst) {
      pushHigh();
      pushLow();
    } else {
      pushLow();
      pushHigh();
    }
  }
  return found;
}

/** Numbers per node on the search stack. */
const NODE_FIELDS = 8;

/**
 * A lower bound of the haversine from the query point to any point of a box — geokdbush's
 * `boxDist`, operation for operation.
 */
function boxHaversine(
  lng: number,
  lat: number,
  cosLat: number,
  minLng: number,
  minLat: number,
  maxLng: number,
  maxLat: number,
): number {
  if (lng >= minLng && lng <= maxLng) {
    if (lat < minLat) return haverSin((lat - minLat) * RADIANS_PER_DEGREE);
    if (lat > maxLat) return haverSin((lat - maxLat) * RADIANS_PER_DEGREE);
    return 0;
  }
  const haverSinDLng = Math.min(
    haverSin((lng - minLng) * RADIANS_PER_DEGREE),
    haverSin((lng - maxLng) * RADIANS_PER_DEGREE),
  );
  const extremumLat = vertexLat(lat, haverSinDLng);
  if (extremumLat > minLat && extremumLat < maxLat) {
    return haverSinDistPartial(haverSinDLng, cosLat, lat, extremumLat);
  }
  return Math.min(
    haverSinDistPartial(haverSinDLng, cosLat, lat, minLat),
    haverSinDistPartial(haverSinDLng, cosLat, lat, maxLat),
  );
}

function haverSinDistPartial(
  haverSinDLng: number,
  cosLat1: number,
  lat1: number,
  lat2: number,
): number {
  return cosLat1 * Math.cos(lat2 * RADIANS_PER_DEGREE) * haverSinDLng +
    haverSin((lat1 - lat2) * RADIANS_PER_DEGREE);
}

/** The latitude where the great circle through the point is nearest a meridian. */
function vertexLat(lat: number, haverSinDLng: number): number {
  const cosDLng = 1 - 2 * haverSinDLng;
  if (cosDLng <= 0) return lat > 0 ? 90 : -90;
  return Math.atan(Math.tan(lat * RADIANS_PER_DEGREE) / cosDLng) / RADIANS_PER_DEGREE;
}

function haverSin(angleRadians: number): number {
  const s = Math.sin(angleRadians / 2);
  return s * s;
}

/** The great-circle distance in km for a haversine of the central angle. */
export function distanceKmFromHaversine(haversineValue: number): number {
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.sqrt(Math.min(1, haversineValue)));
}
