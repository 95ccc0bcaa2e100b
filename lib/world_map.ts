/**
 * The live page's world map: Natural Earth's land outline (the `world-atlas` package, 1:110m)
 * projected once, on the server, into one SVG path with an equirectangular projection, and
 * the same projection for a location. Equirectangular is linear in latitude and longitude,
 * so a dot lands on the outline with plain arithmetic and the browser needs no map library.
 * Knows no HTTP and no herd: coordinates in, map pixels out.
 */
import land from "world-atlas/land-110m.json" with { type: "json" };
import { feature } from "topojson-client";
import { geoEquirectangular, geoPath } from "d3-geo";

/** The map's frame in SVG user units: 360° of longitude across, 180° of latitude down. */
export const WORLD_MAP_WIDTH_PX = 1000;
export const WORLD_MAP_HEIGHT_PX = WORLD_MAP_WIDTH_PX / 2;
/** Decimals kept in the path: a tenth of a unit is finer than a screen pixel at any size. */
const PATH_DIGITS = 1;

let outlinePath: string | undefined;

/** The land outline as an SVG path's `d` in the map's frame; computed on first use, then kept. */
export function worldOutlinePath(): string {
  outlinePath ??= projectLand();
  return outlinePath;
}

/** Where a location falls on the map, in the frame of {@link worldOutlinePath}. */
export function projectToMap(latitude: number, longitude: number): { x: number; y: number } {
  return {
    x: (longitude + 180) / 360 * WORLD_MAP_WIDTH_PX,
    y: (90 - latitude) / 180 * WORLD_MAP_HEIGHT_PX,
  };
}

/** The same projection in d3-geo's terms, so the outline and {@link projectToMap} agree. */
export function mapProjection() {
  return geoEquirectangular()
    .scale(WORLD_MAP_WIDTH_PX / (2 * Math.PI))
    .translate([WORLD_MAP_WIDTH_PX / 2, WORLD_MAP_HEIGHT_PX / 2]);
}

function projectLand(): string {
  const topology = land as unknown as { objects: { land: unknown } };
  const geometry = feature(topology, topology.objects.land);
  return geoPath(mapProjection()).digits(PATH_DIGITS)(geometry) ?? "";
}
