"""JSON Schema → xgrammar EBNF for compact JSON (structured output that always parses).

openvino-genai 2026.4 compiles `StructuredOutputConfig(json_schema=...)` with xgrammar's default
`any_whitespace`, and has no option to turn it off: a weak model loops in free whitespace (the toy
ended a json_schema answer in 150 newlines; SmolLM2 ran 4 of 10 to max_tokens). The grammar built
here allows no whitespace between tokens except at most one space after `:` and `,` (a model
trained on `": "` may still write it). Strings exclude raw control characters, so every accepted
text is valid JSON.

Choices (as xgrammar's strict mode): an object holds its declared properties in declared order
(required ones always); extra properties only when `additionalProperties` is true or a schema;
`{"type": "object"}` without properties is any (compact) object. Numbers have at most 16 integer
and 16 fraction digits (a weak model also loops in digits). `oneOf` is `anyOf` (exclusivity is not
enforced). A `pattern` is the regex as EBNF (anchored; the common subset: classes, groups,
alternation, repeats). Anything else raises `Unsupported(feature)`: the caller falls back to
genai's own json_schema for that request.

Its parts, lower ones first: `ebnf` (literals, repeats, separators, the error), `numbers`
(integer ranges), `regex` (a `pattern` inside a string), `schema` (the schema walk).
"""

from calculators.llm.json_grammar.ebnf import Unsupported, literal
from calculators.llm.json_grammar.numbers import int_range
from calculators.llm.json_grammar.regex import regex_to_ebnf
from calculators.llm.json_grammar.schema import ANY_OBJECT, schema_to_ebnf

__all__ = ["ANY_OBJECT", "Unsupported", "int_range", "literal", "regex_to_ebnf", "schema_to_ebnf"]
