"""The pool client turns vLLM's own request checks into a client's 400, never a 500."""

import pytest

from frontier.errors import FrontierError
from frontier.serving.pool_client import ServeLLMPoolClient


class _Handle:
    def options(self, **_):
        return self


async def test_an_engine_request_check_failing_is_a_400_naming_the_parameter():
    from vllm.exceptions import VLLMValidationError

    client = ServeLLMPoolClient("light", _Handle())
    with pytest.raises(FrontierError) as info:
        # vLLM refuses an empty tool list (Frontier's own schema does too; this is the second line of defence).
        await client.chat({"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": []})
    assert info.value.status_code == 400 and info.value.param == "tools"
    assert isinstance(info.value.__context__, VLLMValidationError)
