import pytest
from openai import OpenAI

from tests.support.stack import running_stack, test_config


@pytest.fixture(scope="session")
def stack_config():
    return test_config()


@pytest.fixture(scope="session")
def base_url(stack_config):
    with running_stack(stack_config) as base:
        yield base


@pytest.fixture(scope="session")
def client(base_url):
    return OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=120)
