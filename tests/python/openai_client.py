"""The official `openai` Python package as a client of Weir's provider adapter.

Usage: openai_client.py BASE_URL SCENARIO, where SCENARIO is `plain`, `stream` or `tool`. Prints one JSON
object with what the client parsed; any exception from the client (a shape it cannot parse) exits non-zero
with the traceback on stderr. Run by tests/tests/all/provider_adapter/python.rs in a venv it creates.
"""

import json
import sys

from openai import OpenAI

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
]

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def plain(client):
    r = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    choice = r.choices[0]
    return {
        "object": r.object,
        "id": r.id,
        "content": choice.message.content,
        "finish_reason": choice.finish_reason,
        "usage": r.usage.model_dump() if r.usage else None,
    }


def stream(client):
    chunks = 0
    content = ""
    finish_reason = None
    usage = None
    ids = set()
    with client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    ) as events:
        for chunk in events:
            chunks += 1
            ids.add(chunk.id)
            if chunk.usage is not None:
                usage = chunk.usage.model_dump()
            for choice in chunk.choices:
                if choice.delta.content:
                    content += choice.delta.content
                if choice.finish_reason:
                    finish_reason = choice.finish_reason
    return {
        "chunks": chunks,
        "ids": len(ids),
        "content": content,
        "finish_reason": finish_reason,
        "usage": usage,
    }


def tool(client):
    r = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=TOOLS,
        tool_choice="auto",
    )
    choice = r.choices[0]
    calls = [
        {
            "id": c.id,
            "type": c.type,
            "name": c.function.name,
            "arguments": json.loads(c.function.arguments),
        }
        for c in choice.message.tool_calls or []
    ]
    return {"finish_reason": choice.finish_reason, "tool_calls": calls}


def main():
    base_url, scenario = sys.argv[1], sys.argv[2]
    client = OpenAI(base_url=base_url, api_key="client-key-never-forwarded", max_retries=0, timeout=20.0)
    run = {"plain": plain, "stream": stream, "tool": tool}[scenario]
    print(json.dumps(run(client)))


if __name__ == "__main__":
    main()
