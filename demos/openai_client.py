"""The official OpenAI SDK against ovserve (start it first: `make serve`).

.venv/bin/python demos/openai_client.py [--base-url http://127.0.0.1:8000/v3] [--model tiny]
"""

from __future__ import annotations

import argparse

import openai


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v3")
    parser.add_argument("--model", default="tiny")
    args = parser.parse_args()
    client = openai.OpenAI(base_url=args.base_url, api_key="unused")

    print("models:", [m.id for m in client.models.list().data])
    reply = client.chat.completions.create(
        model=args.model,
        messages=[{"role": "user", "content": "Say this is a test"}],
        max_tokens=30,
        extra_body={"top_k": 1},  # extras beyond OpenAI's fields go in extra_body
    )
    print("chat:", reply.choices[0].message.content, reply.usage)
    print("stream:", end=" ", flush=True)
    for chunk in client.chat.completions.create(model=args.model, messages=[{"role": "user", "content": "Tell me a story."}], stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
    print()
    completion = client.completions.create(model=args.model, prompt="The capital of France is", max_tokens=5)
    print("completion:", repr(completion.choices[0].text))


if __name__ == "__main__":
    main()
