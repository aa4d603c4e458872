// The JavaScript SDK against the cases every SDK shares (`host-api/tests/analysis-cases.json`),
// and its prompt helpers and error wrapper. Run with `node --test host-api/js/`.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import * as penpal from "./penpal-sdk.js";

const cases = JSON.parse(
  readFileSync(new URL("../tests/analysis-cases.json", import.meta.url), "utf8"),
).cases;

function ctx(message, correctionIntensity = "every-error", extra = {}) {
  return {
    profile: {
      displayName: "Ana", nativeLanguage: "en", targetLanguage: "fr", level: "a2",
      goals: [], interests: [], correctionIntensity,
    },
    mode: "tutor", scenario: undefined, topic: undefined, history: [], memory: undefined,
    pinned: [], message, turn: 0, ...extra,
  };
}

test("every shared case reads as in the Rust SDK", () => {
  for (const c of cases) {
    const review = penpal.salvage(c.raw ?? undefined, ctx(c.message, c.intensity ?? "every-error"));
    const want = c.expect;
    assert.deepEqual(
      review.corrections.map((x) => [x.original, x.corrected, x.category]),
      want.corrections ?? [],
      c.name,
    );
    if (want.vocabulary_count !== undefined) {
      assert.equal(review.vocabulary.length, want.vocabulary_count, c.name);
    } else {
      assert.deepEqual(
        review.vocabulary.map((v) => [v.term, v.translation]),
        want.vocabulary ?? [],
        c.name,
      );
    }
    if (want.level) {
      assert.equal(review.level.observed, want.level[0].toLowerCase(), c.name);
      assert.ok(Math.abs(review.level.confidence - want.level[1]) < 1e-6, c.name);
    } else {
      assert.equal(review.level, undefined, c.name);
    }
    assert.equal(review.debrief, want.debrief ?? undefined, c.name);
    if (want.dropped_starting) {
      assert.equal(review.dropped.length, want.dropped_starting.length, c.name);
      review.dropped.forEach((d, i) => assert.ok(d.startsWith(want.dropped_starting[i]), d));
    } else {
      assert.deepEqual(review.dropped, want.dropped ?? [], c.name);
    }
  }
});

test("the reply frame carries memory, pinned facts, history and the message", () => {
  const history = [
    { role: "user", content: "Salut" },
    { role: "assistant", content: "Bonjour !" },
  ];
  const c = ctx("Je va bien", "gentle", {
    topic: " cooking ", memory: "Ana likes Lyon.", pinned: ["has a cat"], history,
  });
  assert.equal(
    penpal.learnerSummary(c),
    "The learner is Ana, a native English speaker learning French at CEFR level A2. " +
      "Today's topic: cooking.",
  );
  const msgs = penpal.messages("You are Ada.", c);
  assert.deepEqual(msgs.map((m) => m.role), ["system", "user", "assistant", "user"]);
  assert.ok(msgs[0].content.includes("What happened earlier in this conversation: Ana likes Lyon."));
  assert.ok(msgs[0].content.includes("Facts the learner asked you to remember:\n- has a cat"));
  assert.equal(msgs.at(-1).content, "Je va bien");
  const request = penpal.analysisRequest(c);
  assert.equal(request.json, true);
  assert.ok(request.messages[0].content.includes("whose native language is English"));
  assert.equal(penpal.languageName("pt-BR"), "Portuguese");
  assert.equal(penpal.languageName("tlh"), "tlh");
});

test("tutor() turns any throw into an internal error and keeps plugin errors", () => {
  const t = penpal.tutor({
    planTurn() {
      throw new TypeError("x is undefined");
    },
    reviewTurn() {
      throw penpal.fail("only French");
    },
    scenarios() {
      return [];
    },
  });
  assert.throws(() => t.planTurn(), (e) => {
    assert.deepEqual(e, { tag: "internal", val: "TypeError: x is undefined" });
    return true;
  });
  assert.throws(() => t.reviewTurn(), (e) => {
    assert.deepEqual(e, { tag: "invalid-input", val: "only French" });
    return true;
  });
  assert.deepEqual(t.scenarios(), []);
});
