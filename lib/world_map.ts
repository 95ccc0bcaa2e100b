/**
 * The live page's world map: Natural Earth's land outline (the `world-atlas` package, 1:110m)
 * projected once, on the server, into one SVG path with an equirectangular projection, and
 * the same projection for a location. Equirectangular is linear in latitude and longitude,
 * so a dot lands on the outline with plain arithmetic and the browser needs no map library.
 * Knows no HTTP and no herd: coordinates in, map pixels out.
 *
 * The outline's libraries and data (`world_outline.ts`) are loaded on the page's first
 * request, not at start: a server whose live page nobody opens keeps 3–4 MB less memory.
 */

/** The map's frame in SVG user units: 360° of longitude across, 180° of latitude down. */
export const WORLD_MAP_WIDTH_PX = 1000;
export const WORLD_MAP_HEIGHT_PX = WORLD_MAP_WIDTH_PX / 2;

let outlinePath: Promise<string> | undefined;

/**
 * The land outline as an SVG path's `d` in the map's frame; computed on first use, then kept
 * (a failed load is tried again on the next use).
 */
export function worldOutlinePath(): Promise<string> {
  outlinePath ??= import("./world_outline.ts").then(
    (outline) => outline.landOutlinePath(),
    (error) => {
      outlinePath = undefined;
      throw error;
    },
  );
  return outlinePath;
}

/** Where a location falls on the map, in the frame of {@link worldOutlinePath}. */
export function projectToMap(latitude: number, longitude: number): { x: number; y: number } {
  return {
    x: (longitude + 180) / 360 * WORLD_MAP_WIDTH_PX,
    y: (90 - latitude) / 180 * WORLD_MAP_HEIGHT_PX,
  };
}
