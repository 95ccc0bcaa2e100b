/** herd's version, as `GET /status` reports it: bumped with each released change of behaviour. */
export const HERD_VERSION = "0.3.0";
