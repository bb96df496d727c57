import { test, after } from "node:test";
import assert from "node:assert/strict";
import { stasis, tempHome } from "../../testing/cli.js";

const { env, cleanup } = tempHome();
after(cleanup);

test("serve --pin-weights-max (once STASIS_PIN_WEIGHTS_MAX) takes an integer from 1 to 64, beside --pin-weights", async () => {
  for (const [args, expected] of [
    [["--pin-weights-max", "3"], /--pin-weights-max is for --pin-weights/],
    [["--pin-weights", "--pin-weights-max", "0"], /--pin-weights-max: expected a number >= 1 and <= 64, got "0"/],
    [["--pin-weights", "--pin-weights-max", "2.5"], /--pin-weights-max: expected an integer from 1 to 64/],
    [["--pin-weights", "--pin-weights-max", "many"], /--pin-weights-max: expected a number/],
  ] as const) {
    const r = await stasis(["serve", ...args, "--json"], env);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.output}`);
    assert.equal(r.json.error.code, "E_USAGE");
    assert.match(r.json.error.message, expected);
  }
});
