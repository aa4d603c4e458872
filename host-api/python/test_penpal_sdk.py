"""The Python SDK against the cases every SDK shares (`host-api/tests/analysis-cases.json`),
and its prompt helpers. Run with the bindings componentize-py generates on the path:

    componentize-py -d wit/v0.2 -w tutor bindings /tmp/bindings
    PYTHONPATH=/tmp/bindings python3 host-api/python/test_penpal_sdk.py
"""

import json
import pathlib
import unittest

import penpal_sdk as penpal
from componentize_py_types import Err
from wit_world.exports.tutoring import (
    CefrLevel,
    ChatMode,
    CorrectionIntensity,
    LearnerProfile,
    TurnContext,
)
from wit_world.imports.types import (
    ChatMessage,
    PluginError_Internal,
    PluginError_InvalidInput,
    Role,
)

CASES = pathlib.Path(__file__).resolve().parent.parent / "tests" / "analysis-cases.json"
INTENSITY = {
    "off": CorrectionIntensity.OFF,
    "gentle": CorrectionIntensity.GENTLE,
    "every-error": CorrectionIntensity.EVERY_ERROR,
}


def ctx(message, intensity=CorrectionIntensity.EVERY_ERROR, **extra):
    profile = LearnerProfile("Ana", "en", "fr", CefrLevel.A2, [], [], intensity)
    fields = dict(
        profile=profile, mode=ChatMode.TUTOR, scenario=None, topic=None, history=[],
        memory=None, pinned=[], message=message, turn=0,
    )
    fields.update(extra)
    return TurnContext(**fields)


class SharedCases(unittest.TestCase):
    def test_every_case_reads_as_in_the_rust_sdk(self):
        doc = json.loads(CASES.read_text(encoding="utf-8"))
        for case in doc["cases"]:
            with self.subTest(case["name"]):
                intensity = INTENSITY[case.get("intensity", "every-error")]
                review = penpal.salvage(case["raw"], ctx(case["message"], intensity))
                want = case["expect"]
                got = [
                    [c.original, c.corrected, c.category.name.lower().replace("_", "-")]
                    for c in review.corrections
                ]
                self.assertEqual(got, want.get("corrections", []))
                if "vocabulary_count" in want:
                    self.assertEqual(len(review.vocabulary), want["vocabulary_count"])
                else:
                    got = [[v.term, v.translation] for v in review.vocabulary]
                    self.assertEqual(got, want.get("vocabulary", []))
                if want.get("level") is None:
                    self.assertIsNone(review.level)
                else:
                    self.assertEqual(review.level.observed.name, want["level"][0])
                    self.assertAlmostEqual(review.level.confidence, want["level"][1])
                self.assertEqual(review.debrief, want.get("debrief"))
                if "dropped_starting" in want:
                    self.assertEqual(len(review.dropped), len(want["dropped_starting"]))
                    for d, start in zip(review.dropped, want["dropped_starting"]):
                        self.assertTrue(d.startswith(start), d)
                else:
                    self.assertEqual(review.dropped, want.get("dropped", []))


class Prompts(unittest.TestCase):
    def test_the_reply_frame_carries_memory_pins_history_and_the_message(self):
        history = [ChatMessage(Role.USER, "Salut"), ChatMessage(Role.ASSISTANT, "Bonjour !")]
        c = ctx("Je va bien", topic=" cooking ", memory="Ana likes Lyon.", pinned=["has a cat"],
                history=history)
        summary = penpal.learner_summary(c)
        self.assertEqual(
            summary,
            "The learner is Ana, a native English speaker learning French at CEFR level A2. "
            "Today's topic: cooking.",
        )
        msgs = penpal.messages("You are Ada.", c)
        self.assertEqual([m.role for m in msgs], [Role.SYSTEM, Role.USER, Role.ASSISTANT, Role.USER])
        self.assertIn("What happened earlier in this conversation: Ana likes Lyon.", msgs[0].content)
        self.assertIn("Facts the learner asked you to remember:\n- has a cat", msgs[0].content)
        self.assertEqual(msgs[-1].content, "Je va bien")
        request = penpal.analysis_request(c)
        self.assertTrue(request.json)
        self.assertIn("whose native language is English", request.messages[0].content)
        self.assertEqual(penpal.language_name("pt-BR"), "Portuguese")
        self.assertEqual(penpal.language_name("tlh"), "tlh")


class Errors(unittest.TestCase):
    def test_guard_turns_any_exception_into_an_internal_error_and_keeps_plugin_errors(self):
        @penpal.guard
        def broken():
            return {}["missing"]

        @penpal.guard
        def refusing():
            raise penpal.fail("only French")

        with self.assertRaises(Err) as caught:
            broken()
        self.assertEqual(caught.exception.value, PluginError_Internal("KeyError: 'missing'"))
        with self.assertRaises(Err) as caught:
            refusing()
        self.assertEqual(caught.exception.value, PluginError_InvalidInput("only French"))


if __name__ == "__main__":
    unittest.main()
