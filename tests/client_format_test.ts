import assert from "node:assert/strict";
import {
  formatPlacesReply,
  formatPosixTime,
  greatCircleKm,
  readTypedLine,
  ReplyFramer,
} from "../lib/client_format.ts";

/** 2023-11-14T22:13:20.5Z, as the injected clock. */
const NOW_NS = 1_700_000_000_500_000_000n;
const AT_LINE = "AT Hill +0.263873386 kiwi +34.0689-118.4451 1700000000.500000000";

function placesReply(body: unknown): string {
  return `${AT_LINE}\n${JSON.stringify(body)}\n\n`;
}

const TWO_PLACES = {
  html_attributions: [],
  results: [
    {
      name: "Bel Air",
      geometry: { location: { lat: 34.08334, lng: -118.44869 } },
      vicinity: "CA, US",
    },
    { name: "Westwood", geometry: { location: { lat: 34.05612, lng: -118.43063 } } },
  ],
  status: "OK",
};

Deno.test("readTypedLine() builds the IAMAT of `iamat kiwi 34.0689 -118.4451` at the clock's time", () => {
  assert.deepEqual(readTypedLine("iamat kiwi 34.0689 -118.4451", NOW_NS), {
    kind: "send",
    line: "IAMAT kiwi +34.0689-118.4451 1700000000.500000000",
    readable: false,
  });
});

Deno.test("readTypedLine() keeps the digits typed and writes every sign", () => {
  const cases: Array<[string, string]> = [
    ["iamat a -0.5 +179.999", "IAMAT a -0.5+179.999 1700000000.500000000"],
    ["iamat a 90 -180", "IAMAT a +90-180 1700000000.500000000"],
    ["  iamat\ta 0 0  ", "IAMAT a +0+0 1700000000.500000000"],
  ];
  for (const [typed, line] of cases) {
    assert.deepEqual(readTypedLine(typed, NOW_NS), { kind: "send", line, readable: false }, typed);
  }
});

Deno.test("readTypedLine() turns `whatsat` into a WHATSAT whose reply is shown as a list", () => {
  assert.deepEqual(readTypedLine("whatsat kiwi 10 5", NOW_NS), {
    kind: "send",
    line: "WHATSAT kiwi 10 5",
    readable: true,
  });
});

Deno.test("readTypedLine() sends anything else as typed, and `quit` alone quits", () => {
  assert.deepEqual(readTypedLine("quit", NOW_NS), { kind: "quit" });
  for (const typed of ["IAMAT kiwi +1+2 3", "hello", "", "quit now", "WHATSAT kiwi 10 99"]) {
    assert.deepEqual(readTypedLine(typed, NOW_NS), { kind: "send", line: typed, readable: false });
  }
});

Deno.test("readTypedLine() refuses bad helper input with a message naming the mistake", () => {
  const cases: Array<[string, RegExp]> = [
    ["iamat kiwi 34.0689", /iamat takes 3 fields: iamat ID LAT LNG/],
    ["iamat kiwi 34 -118 5", /iamat takes 3 fields/],
    ["iamat kiwi 1e1 0", /LAT and LNG must be decimal numbers/],
    ["iamat kiwi north 0", /LAT and LNG must be decimal numbers/],
    ["iamat kiwi .5 0", /LAT and LNG must be decimal numbers/],
    ["iamat kiwi 90.5 0", /LAT must be from -90 to 90/],
    ["iamat kiwi 0 -180.1", /LNG from -180 to 180/],
    ["iamat kiwi 034 0", /at most 2 whole digits/],
    ["whatsat kiwi 10", /whatsat takes 3 fields: whatsat ID RADIUS_KM BOUND/],
    ["whatsat kiwi 51 5", /bad radius: whatsat ID RADIUS_KM BOUND/],
    ["whatsat kiwi 0 5", /bad radius/],
    ["whatsat kiwi 10 21", /bound out of range/],
    ["whatsat kiwi 10 5.0", /bad bound/],
  ];
  for (const [typed, message] of cases) {
    const command = readTypedLine(typed, NOW_NS);
    assert.equal(command.kind, "mistake", typed);
    assert.match((command as { message: string }).message, message, typed);
  }
});

Deno.test("formatPosixTime() writes nine decimals, zeros kept", () => {
  assert.equal(formatPosixTime(1_700_000_000_000_000_001n), "1700000000.000000001");
  assert.equal(formatPosixTime(0n), "0.000000000");
});

Deno.test("greatCircleKm() measures along the Earth's surface", () => {
  const ucla = { latitude: 34.0689, longitude: -118.4451 };
  assert.equal(greatCircleKm(ucla, ucla), 0);
  // A quarter of the equator: π/2 × 6371 km.
  const quarter = greatCircleKm({ latitude: 0, longitude: 0 }, { latitude: 0, longitude: 90 });
  assert.ok(Math.abs(quarter - 10007.54) < 0.01, `${quarter}`);
  // A degree of latitude: 6371 km × π / 180, the same at any longitude.
  const degree = greatCircleKm({ latitude: 10, longitude: -118 }, {
    latitude: 11,
    longitude: -118,
  });
  assert.ok(Math.abs(degree - 111.195) < 0.001, `${degree}`);
});

Deno.test("formatPlacesReply() lists each place with its distance from the AT line's location", () => {
  assert.equal(
    formatPlacesReply(placesReply(TWO_PLACES)),
    `${AT_LINE}\n` +
      "2 places near +34.0689-118.4451:\n" +
      " 1. Bel Air — 1.64 km — CA, US\n" +
      " 2. Westwood — 1.95 km\n",
  );
});

Deno.test("formatPlacesReply() shows the status when it is not OK", () => {
  const body = { html_attributions: [], results: [], status: "OVER_QUERY_LIMIT" };
  assert.equal(formatPlacesReply(placesReply(body)), `${AT_LINE}\nno places: OVER_QUERY_LIMIT\n`);
});

Deno.test("formatPlacesReply() marks what a result lacks instead of failing", () => {
  const body = { html_attributions: [], results: [{ vicinity: "somewhere" }], status: "OK" };
  assert.equal(
    formatPlacesReply(placesReply(body)),
    `${AT_LINE}\n1 place near +34.0689-118.4451:\n 1. (no name) — ? km — somewhere\n`,
  );
});

Deno.test("formatPlacesReply() returns what it cannot read as it came", () => {
  for (
    const reply of ["? WHATSAT kiwi 10 5\n", `${AT_LINE}\nnot json\n\n`, "AT nonsense\n{}\n\n"]
  ) {
    assert.equal(formatPlacesReply(reply), reply);
  }
});

Deno.test("ReplyFramer shows each reply once it is whole, in the order the lines were sent", () => {
  const framer = new ReplyFramer();
  framer.expect("IAMAT kiwi +34.0689-118.4451 1700000000.500000000", false);
  framer.expect("WHATSAT kiwi 10 2", true);
  framer.expect("WHATSAT nobody 10 2", true);
  framer.expect("WHATSAT kiwi 10 2", false);
  framer.expect("hello", false);
  const whatsat = placesReply(TWO_PLACES);
  const stream = `${AT_LINE}\n${whatsat}? WHATSAT nobody 10 2\n${whatsat}? hello\nextra\n`;
  const shown: string[] = [];
  // Byte-sized pieces: a reply split anywhere is still shown whole.
  for (const piece of stream) shown.push(...framer.receive(piece));
  assert.deepEqual(shown, [
    `${AT_LINE}\n`,
    formatPlacesReply(whatsat),
    "? WHATSAT nobody 10 2\n",
    whatsat,
    "? hello\n",
    "extra\n",
  ]);
  assert.equal(framer.rest(), "");
});

Deno.test("ReplyFramer keeps a reply cut short by the server closing as the rest", () => {
  const framer = new ReplyFramer();
  framer.expect("WHATSAT kiwi 10 2", true);
  assert.deepEqual(framer.receive(`${AT_LINE}\n{"resu`), []);
  assert.equal(framer.rest(), `${AT_LINE}\n{"resu`);
});
