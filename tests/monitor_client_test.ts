import assert from "node:assert/strict";
import { monitorClient, monitorStatusUrl } from "../lib/monitor_client.ts";
import { makeCa } from "../scripts/certs.ts";

Deno.test("monitorClient() without a CA asks over plain HTTP with the given fetch", async () => {
  const asked: string[] = [];
  const fakeFetch = (input: RequestInfo | URL) => {
    asked.push(String(input));
    return Promise.resolve(new Response("ok"));
  };
  const client = monitorClient(undefined, fakeFetch as typeof fetch);
  assert.equal(client.scheme, "http");
  const url = monitorStatusUrl(client, { host: "::1", port: 12100 });
  assert.equal(url, "http://[::1]:12100/status");
  await client.fetch(url);
  assert.deepEqual(asked, [url]);
});

Deno.test("monitorClient() with a CA asks over HTTPS through a client that trusts it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await makeCa(dir);
    const inits: Array<RequestInit | undefined> = [];
    const fakeFetch = (_input: RequestInfo | URL, init?: RequestInit) => {
      inits.push(init);
      return Promise.resolve(new Response("ok"));
    };
    const client = monitorClient(
      await Deno.readTextFile(`${dir}/ca.pem`),
      fakeFetch as typeof fetch,
    );
    assert.equal(client.scheme, "https");
    assert.equal(
      monitorStatusUrl(client, { host: "10.0.0.1", port: 1 }),
      "https://10.0.0.1:1/status",
    );
    await client.fetch("https://10.0.0.1:1/status", { headers: { a: "b" } });
    const init = inits[0] as RequestInit & { client?: Deno.HttpClient };
    assert.ok(init.client !== undefined, "no HTTP client with the CA");
    assert.deepEqual(init.headers, { a: "b" });
    init.client.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
