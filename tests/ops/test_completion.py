"""``icloudfs completion bash``, loaded into a real bash and asked what it offers."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from icloudfs.cli import build_parser
from icloudfs.ops.completion import bash

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")


def offered(script: str, line: str) -> list[str]:
    """What bash completes for ``line`` (the cursor at its end)."""
    probe = f"""{script}
COMP_WORDS=({line}); COMP_CWORD=${{#COMP_WORDS[@]}}
[[ "{line}" == *" " ]] && COMP_WORDS+=("") && COMP_CWORD=$((COMP_CWORD))
[[ "{line}" != *" " ]] && COMP_CWORD=$((COMP_CWORD - 1))
_icloudfs; printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    return done.stdout.split()


@pytest.fixture(scope="module")
def script() -> str:
    return bash(build_parser())


def test_commands_subcommands_options_and_choices(script: str) -> None:
    assert offered(script, "icloudfs mo") == ["mount"]
    assert offered(script, "icloudfs token ") == ["create", "list", "revoke"]
    assert offered(script, "icloudfs ")[:3] == ["login", "logout", "mount"]
    assert offered(script, "icloudfs token create --desc") == ["--description"]
    assert "--force" in offered(script, "icloudfs unmount --f")
    assert offered(script, "icloudfs mount /mnt --log-format ") == ["text", "json"]
    assert offered(script, "icloudfs login --apple-id ") == []  # a free value: bash offers files


def test_the_cli_prints_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "icloudfs", "completion", "bash"], capture_output=True, text=True, check=True
    )
    assert "complete -o default -F _icloudfs icloudfs" in done.stdout
