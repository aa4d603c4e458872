// The Penpal SDK for tutors written in JavaScript (componentize-js).
//
// The same conveniences the Rust SDK (`penpal-host-api`) gives: language names, the prompt
// frame every personality needs, the standard analysis request, the lenient reader that
// salvages the model's analysis JSON, and `tutor()`, which turns anything a method throws into
// a clear `plugin-error` (a bare `throw new Error()` would otherwise reach the host as a
// malformed error). `penpal plugin new --lang js` copies this file into a new project.
//
// How WIT values look in JavaScript: records are objects with camelCase fields, enums are
// their WIT names as strings ("b1", "every-error"), `option<T>` is the value or `undefined`,
// and a `plugin-error` is `{ tag: "invalid-input", val: "what is wrong" }`.
//
// The analysis shape the reader takes (every field optional):
//
//   {"corrections": [{"original": "", "corrected": "", "explanation": "", "category": "grammar"}],
//    "vocabulary": [{"term": "", "translation": "", "example": ""}],
//    "level": {"observed": "B1", "confidence": 0.6},
//    "goal_met": false,
//    "debrief": null}

export const MAX_INPUT_BYTES = 32 * 1024;
export const MAX_CORRECTIONS = 12;
export const MAX_VOCABULARY = 12;
export const MAX_FIELD_CHARS = 400;
export const MAX_DEBRIEF_CHARS = 4000;
export const GENTLE_CORRECTIONS = 2;
const MAX_REPAIRS = 64;

const LANGUAGES = {
  ar: "Arabic", ca: "Catalan", cs: "Czech", da: "Danish", de: "German", el: "Greek",
  en: "English", es: "Spanish", fi: "Finnish", fr: "French", he: "Hebrew", hi: "Hindi",
  hu: "Hungarian", id: "Indonesian", it: "Italian", ja: "Japanese", ko: "Korean", nl: "Dutch",
  no: "Norwegian", nb: "Norwegian", pl: "Polish", pt: "Portuguese", ro: "Romanian",
  ru: "Russian", sv: "Swedish", th: "Thai", tr: "Turkish", uk: "Ukrainian", vi: "Vietnamese",
  zh: "Chinese",
};

const CATEGORIES = {
  grammar: "grammar", conjugation: "grammar", agreement: "grammar", tense: "grammar",
  gender: "grammar", vocabulary: "vocabulary", wordchoice: "vocabulary", lexical: "vocabulary",
  spelling: "spelling", orthography: "spelling", accent: "spelling", accents: "spelling",
  punctuation: "punctuation", wordorder: "word-order", syntax: "word-order",
  register: "register", style: "register", formality: "register", other: "other",
};

const ERROR_TAGS = ["denied", "invalid-input", "not-found", "unavailable", "internal"];

/** An `invalid-input` error to throw for a turn the personality cannot serve; the host shows
 * `message` to the learner. */
export function fail(message) {
  return { tag: "invalid-input", val: String(message) };
}

/** The `tutoring` export for `methods` ({ scenarios, planTurn, reviewTurn }): anything they
 * throw that is not a `plugin-error` becomes an `internal` one naming it. */
export function tutor(methods) {
  const guarded = {};
  for (const [name, method] of Object.entries(methods)) {
    guarded[name] = (...args) => {
      try {
        return method(...args);
      } catch (e) {
        if (e && typeof e === "object" && ERROR_TAGS.includes(e.tag) && typeof e.val === "string") {
          throw e;
        }
        throw { tag: "internal", val: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
      }
    };
  }
  return guarded;
}

/** The English name of a BCP 47 tag's primary language (`pt-BR` → Portuguese), or the tag. */
export function languageName(tag) {
  const primary = tag.split(/[-_]/)[0].toLowerCase();
  return LANGUAGES[primary] ?? tag;
}

/** A level as people write it: "b1" → "B1". */
export function levelCode(level) {
  return level.toUpperCase();
}

/** One paragraph about the learner, for a system prompt. */
export function learnerSummary(ctx) {
  const p = ctx.profile;
  const name = p.displayName.trim() || "anonymous";
  let out =
    `The learner is ${name}, a native ${languageName(p.nativeLanguage)} speaker learning ` +
    `${languageName(p.targetLanguage)} at CEFR level ${levelCode(p.level)}.`;
  if (p.goals.length) out += ` Their goals: ${p.goals.join(", ")}.`;
  if (p.interests.length) out += ` They are interested in ${p.interests.join(", ")}.`;
  if (ctx.topic && ctx.topic.trim()) out += ` Today's topic: ${ctx.topic.trim()}.`;
  return out;
}

/** `system` followed by the memory, the pinned facts, the recent history and the new message:
 * the messages of a reply request. */
export function messages(system, ctx) {
  if (ctx.memory && ctx.memory.trim()) {
    system += "\n\nWhat happened earlier in this conversation: " + ctx.memory.trim();
  }
  if (ctx.pinned.length) {
    system += "\n\nFacts the learner asked you to remember:";
    for (const fact of ctx.pinned) system += "\n- " + fact;
  }
  return [
    { role: "system", content: system },
    ...ctx.history,
    { role: "user", content: ctx.message },
  ];
}

/** A streamed reply request with the host's default model. */
export function reply(msgs, temperature, maxTokens) {
  return { messages: msgs, model: undefined, temperature, maxTokens, json: false };
}

/** The standard analysis request: one JSON object of the shape `salvage` reads, with
 * explanations in the learner's native language. `focus` adds the personality's own asks. */
export function analysisRequest(ctx, focus = "") {
  const native = languageName(ctx.profile.nativeLanguage);
  const target = languageName(ctx.profile.targetLanguage);
  const level = levelCode(ctx.profile.level);
  const system =
    `You analyse one message written in ${target} by a learner at CEFR level ${level} whose ` +
    `native language is ${native}. Answer with one JSON object and nothing else:\n` +
    `{"corrections": [{"original": exact words from the message, "corrected": the ` +
    `fixed words, "explanation": why, in ${native}, one sentence, "category": one of ` +
    `grammar|vocabulary|spelling|punctuation|word-order|register|other}],\n` +
    `"vocabulary": [{"term": a useful ${target} word or phrase for this learner, ` +
    `"translation": in ${native}, "example": a short ${target} sentence}],\n` +
    `"level": {"observed": the CEFR level this message shows, "confidence": 0 to 1}}\n` +
    `Quote \`original\` exactly as the learner wrote it. Report only real errors; an empty ` +
    `list is a fine answer. At most 3 vocabulary items. ${focus}`;
  return {
    messages: [
      { role: "system", content: system },
      { role: "user", content: ctx.message },
    ],
    model: undefined,
    temperature: 0,
    maxTokens: 700,
    json: true,
  };
}

/** Reads the model's analysis `raw` for the turn `ctx`: keeps every item that validates,
 * applies the learner's correction intensity and says in `dropped` what it threw away and why.
 * Never throws, whatever the model wrote. */
export function salvage(raw, ctx) {
  const review = { corrections: [], vocabulary: [], level: undefined, debrief: undefined, dropped: [] };
  if (raw === undefined || raw === null) return review;
  const obj = extractObject(raw, review.dropped);
  if (!obj) return review;
  readCorrections(review, obj.corrections, ctx.message);
  readVocabulary(review, obj.vocabulary);
  readLevel(review, obj.level);
  if (typeof obj.debrief === "string") {
    const text = clean(obj.debrief, MAX_DEBRIEF_CHARS);
    if (text) review.debrief = text;
  } else if (obj.debrief !== undefined && obj.debrief !== null) {
    review.dropped.push("debrief: not a string");
  }
  applyIntensity(review, ctx.profile.correctionIntensity);
  return review;
}

function applyIntensity(review, intensity) {
  if (intensity === "off" && review.corrections.length) {
    review.dropped.push(
      `${review.corrections.length} correction(s): the learner turned corrections off`,
    );
    review.corrections = [];
  } else if (intensity === "gentle") {
    const before = review.corrections.length;
    review.corrections = review.corrections
      .filter((c) => c.category !== "punctuation")
      .slice(0, GENTLE_CORRECTIONS);
    const cut = before - review.corrections.length;
    if (cut) review.dropped.push(`${cut} minor correction(s): gentle correction intensity`);
  }
}

function list(value, name, dropped) {
  if (value === undefined || value === null) return null;
  if (Array.isArray(value)) return value;
  dropped.push(`${name}: not a list`);
  return null;
}

function isObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function readCorrections(review, value, message) {
  const items = list(value, "corrections", review.dropped);
  if (!items) return;
  const haystack = normalise(message);
  for (let i = 0; i < items.length; i++) {
    if (review.corrections.length === MAX_CORRECTIONS) {
      review.dropped.push(`corrections past the first ${MAX_CORRECTIONS}: ${items.length - i} more`);
      break;
    }
    const item = items[i];
    let why = null;
    if (!isObject(item)) why = "not an object";
    else {
      const original = text(item, "original");
      const corrected = text(item, "corrected");
      if (original === undefined) why = "no original text";
      else if (corrected === undefined) why = "no corrected text";
      else if (original === corrected) why = "corrected text is the same as the original";
      // A model sometimes "corrects" words the learner never wrote.
      else if (!haystack.includes(normalise(original))) {
        why = "original text is not in the learner's message";
      } else {
        const key =
          typeof item.category === "string"
            ? item.category.toLowerCase().replace(/[^a-z0-9]/g, "")
            : "";
        review.corrections.push({
          original,
          corrected,
          explanation: text(item, "explanation") ?? "",
          category: CATEGORIES[key] ?? "other",
        });
      }
    }
    if (why) review.dropped.push(`correction ${i}: ${why}`);
  }
}

function readVocabulary(review, value) {
  const items = list(value, "vocabulary", review.dropped);
  if (!items) return;
  for (let i = 0; i < items.length; i++) {
    if (review.vocabulary.length === MAX_VOCABULARY) {
      review.dropped.push(`vocabulary past the first ${MAX_VOCABULARY}: ${items.length - i} more`);
      break;
    }
    const item = items[i];
    if (!isObject(item)) {
      review.dropped.push(`vocabulary ${i}: not an object`);
      continue;
    }
    const term = text(item, "term");
    const translation = text(item, "translation");
    if (term === undefined) review.dropped.push(`vocabulary ${i}: no term`);
    else if (translation === undefined) review.dropped.push(`vocabulary ${i}: no translation`);
    else if (review.vocabulary.some((v) => v.term.toLowerCase() === term.toLowerCase())) {
      review.dropped.push(`vocabulary ${i}: duplicate of "${term}"`);
    } else {
      review.vocabulary.push({ term, translation, example: text(item, "example") });
    }
  }
}

function readLevel(review, value) {
  if (value === undefined || value === null) return;
  let observed, confidence;
  if (typeof value === "string") observed = value;
  else if (isObject(value)) ({ observed, confidence } = value);
  else {
    review.dropped.push("level: not a level");
    return;
  }
  const code = typeof observed === "string" ? observed.trim().toLowerCase() : "";
  if (!["a1", "a2", "b1", "b2", "c1", "c2"].includes(code)) {
    review.dropped.push("level: not one of A1–C2");
    return;
  }
  if (confidence === undefined || confidence === null) confidence = 0.5;
  else if (typeof confidence !== "number" || !Number.isFinite(confidence)) {
    review.dropped.push("level: confidence is not a number");
    return;
  }
  review.level = { observed: code, confidence: Math.min(Math.max(confidence, 0), 1) };
}

function text(fields, name) {
  const value = fields[name];
  if (typeof value !== "string") return undefined;
  return clean(value, MAX_FIELD_CHARS) || undefined;
}

function clean(value, maxChars) {
  // eslint-disable-next-line no-control-regex
  const kept = [...value.trim().replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g, "")];
  return kept.slice(0, maxChars).join("").trim();
}

function normalise(value) {
  return value.split(/\s+/).filter(Boolean).map((w) => w.toLowerCase()).join(" ");
}

function extractObject(raw, dropped) {
  const bytes = new TextEncoder().encode(raw);
  if (bytes.length > MAX_INPUT_BYTES) {
    raw = new TextDecoder().decode(bytes.slice(0, MAX_INPUT_BYTES)).replace(/\uFFFD$/, "");
    dropped.push(`analysis past its first ${MAX_INPUT_BYTES} bytes`);
  }
  const start = raw.indexOf("{");
  if (start < 0) {
    dropped.push("analysis: no JSON object in the model's answer");
    return null;
  }
  const body = raw.slice(start);
  const { cuts, closedAt } = scan(body);
  if (closedAt !== null) {
    try {
      const value = JSON.parse(body.slice(0, closedAt + 1));
      if (isObject(value)) return value;
    } catch (e) {
      dropped.push(`analysis: not valid JSON (${e.message})`);
      return null;
    }
  }
  for (const [at, closers] of cuts.slice(-MAX_REPAIRS).reverse()) {
    try {
      const value = JSON.parse(body.slice(0, at) + closers);
      if (isObject(value)) {
        dropped.push("analysis was cut short; kept its complete items");
        return value;
      }
    } catch {
      // try an earlier cut
    }
  }
  dropped.push("analysis was cut short and nothing could be kept");
  return null;
}

// The points where a truncated object could be closed ([cut position, closers needed there]),
// and where the outer object closes, if it does.
function scan(body) {
  const cuts = [];
  const stack = [];
  let inString = false;
  let escaped = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (c === "\\") escaped = true;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === "{" || c === "[") {
      stack.push(c === "{" ? "}" : "]");
      if (c === "[" || stack.length === 1) cuts.push([i + 1, [...stack].reverse().join("")]);
    } else if (c === "}" || c === "]") {
      stack.pop();
      if (!stack.length) return { cuts, closedAt: i };
    } else if (c === "," && (stack.length === 1 || stack[stack.length - 1] === "]")) {
      cuts.push([i, [...stack].reverse().join("")]);
    }
  }
  return { cuts, closedAt: null };
}
