import assert from "node:assert/strict";
import {
  projectToMap,
  WORLD_MAP_HEIGHT_PX,
  WORLD_MAP_WIDTH_PX,
  worldOutlinePath,
} from "../lib/world_map.ts";
import { mapProjection } from "../lib/world_outline.ts";

/** Every x,y pair of an SVG path made of M, L and Z commands. */
function pathPoints(path: string): Array<[number, number]> {
  return path.split(/[MLZ]/).filter((pair) => pair !== "").map((pair) => {
    const [x, y] = pair.split(",").map(Number);
    return [x, y];
  });
}

Deno.test("worldOutlinePath() is a non-empty path spanning the map's frame", async () => {
  const path = await worldOutlinePath();
  assert.match(path, /^M[0-9.]+,[0-9.]+L/);
  const points = pathPoints(path);
  assert.ok(points.length > 1000, `only ${points.length} points`);
  assert.ok(points.every(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  const xs = points.map(([x]) => x);
  const ys = points.map(([, y]) => y);
  // Land reaches both edges of the map (Russia/Fiji at ±180°) and Antarctica its bottom.
  assert.ok(Math.min(...xs) <= 1 && Math.max(...xs) >= WORLD_MAP_WIDTH_PX - 1);
  assert.ok(Math.max(...ys) >= WORLD_MAP_HEIGHT_PX - 1);
  // No land north of 84°N in Natural Earth 1:110m (Greenland's tip is at ~83.6°N).
  assert.ok(Math.min(...ys) >= projectToMap(84, 0).y, `land at y ${Math.min(...ys)}`);
});

Deno.test("projectToMap() puts known points where the outline's projection does", () => {
  const cases: Array<{ place: string; latitude: number; longitude: number; x: number; y: number }> =
    [
      { place: "null island", latitude: 0, longitude: 0, x: 500, y: 250 },
      { place: "north-west corner", latitude: 90, longitude: -180, x: 0, y: 0 },
      { place: "south-east corner", latitude: -90, longitude: 180, x: 1000, y: 500 },
      { place: "UCLA", latitude: 34.06893, longitude: -118.445127, x: 170.985758, y: 155.364083 },
      { place: "Sydney", latitude: -33.8688, longitude: 151.2093, x: 920.025833, y: 344.08 },
    ];
  const projection = mapProjection();
  for (const { place, latitude, longitude, x, y } of cases) {
    const mapped = projectToMap(latitude, longitude);
    assert.ok(Math.abs(mapped.x - x) < 1e-3 && Math.abs(mapped.y - y) < 1e-3, place);
    const [d3x, d3y] = projection([longitude, latitude])!;
    assert.ok(Math.abs(mapped.x - d3x) < 1e-6 && Math.abs(mapped.y - d3y) < 1e-6, place);
  }
});

Deno.test("the outline has land where Africa is and none mid-Pacific", async () => {
  const points = pathPoints(await worldOutlinePath());
  const near = (latitude: number, longitude: number, radiusPx: number) => {
    const { x, y } = projectToMap(latitude, longitude);
    return points.some(([px, py]) => Math.hypot(px - x, py - y) <= radiusPx);
  };
  // The Cape of Good Hope is a coastline vertex; the middle of the Pacific has none.
  assert.ok(near(-34.36, 18.47, 3), "no coast near the Cape of Good Hope");
  assert.ok(!near(-10, -140, 15), "coast in the middle of the Pacific");
});
