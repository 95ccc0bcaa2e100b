/**
 * The world map's land outline: Natural Earth's land at 1:110m (the `world-atlas` package,
 * as TopoJSON) turned into one SVG path by d3-geo, in the frame and projection of
 * `world_map.ts`. Loaded only when the live page is first asked for (see there).
 */
import land from "world-atlas/land-110m.json" with { type: "json" };
import { feature } from "topojson-client";
import { geoEquirectangular, geoPath } from "d3-geo";
import { WORLD_MAP_HEIGHT_PX, WORLD_MAP_WIDTH_PX } from "./world_map.ts";

/** Decimals kept in the path: a tenth of a unit is finer than a screen pixel at any size. */
const PATH_DIGITS = 1;

/** The projection of `projectToMap` in d3-geo's terms, so the outline and it agree. */
export function mapProjection() {
  return geoEquirectangular()
    .scale(WORLD_MAP_WIDTH_PX / (2 * Math.PI))
    .translate([WORLD_MAP_WIDTH_PX / 2, WORLD_MAP_HEIGHT_PX / 2]);
}

/** The land outline as an SVG path's `d`. */
export function landOutlinePath(): string {
  const topology = land as unknown as { objects: { land: unknown } };
  const geometry = feature(topology, topology.objects.land);
  return geoPath(mapProjection()).digits(PATH_DIGITS)(geometry) ?? "";
}
