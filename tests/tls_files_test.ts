import assert from "node:assert/strict";
import type { PeerCertificate } from "node:tls";
import { certificateNames } from "../lib/tls_files.ts";

/** A peer certificate as node:tls gives it, with only the fields the names come from. */
function certificate(subject: Record<string, unknown>, subjectaltname?: string): PeerCertificate {
  return { subject, subjectaltname } as unknown as PeerCertificate;
}

Deno.test("certificateNames() gives the CN and the DNS alternative names, each once", () => {
  const names = certificateNames(
    certificate({ CN: "Hill" }, "DNS:Hill, DNS:hill.example, IP Address:127.0.0.1"),
  );
  assert.deepEqual(names, ["Hill", "hill.example"]);
});

Deno.test("certificateNames() ignores IP, email and URI alternative names", () => {
  const names = certificateNames(
    certificate({ O: "herd" }, "IP Address:10.0.0.1, email:Hill, URI:Hill"),
  );
  assert.deepEqual(names, []);
});

Deno.test("certificateNames() takes every CN of a subject with several", () => {
  assert.deepEqual(certificateNames(certificate({ CN: ["Hill", "Smith"] })), ["Hill", "Smith"]);
});

Deno.test("certificateNames() keeps node's quotes on an escaped entry, so it matches no name", () => {
  const names = certificateNames(certificate({}, 'DNS:"Hill, Smith"'));
  assert.ok(!names.includes("Hill") && !names.includes("Smith"), JSON.stringify(names));
});
