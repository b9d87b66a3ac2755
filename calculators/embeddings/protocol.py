"""`POST /v3/embeddings` bodies (OpenAI's shape)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from calculators.openai.protocol import TokenId, _Model

MAX_INPUTS = 2048


class EmbeddingsRequest(_Model):
    model: str
    input: (
        Annotated[str, Field(min_length=1)]
        | Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1, max_length=MAX_INPUTS)]
        | Annotated[list[TokenId], Field(min_length=1)]
        | Annotated[list[Annotated[list[TokenId], Field(min_length=1)]], Field(min_length=1, max_length=MAX_INPUTS)]
    )
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int, Field(ge=1)] | None = None
    user: str | None = None

    def texts(self) -> list[str] | None:
        if isinstance(self.input, str):
            return [self.input]
        if isinstance(self.input[0], str):
            return list(self.input)  # type: ignore[arg-type]
        return None

    def token_ids(self) -> list[list[int]] | None:
        if isinstance(self.input, str) or isinstance(self.input[0], str):
            return None
        if isinstance(self.input[0], int):
            return [list(self.input)]  # type: ignore[arg-type]
        return [list(ids) for ids in self.input]  # type: ignore[union-attr]
