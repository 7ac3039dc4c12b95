"""``icloudfs completion bash`` (shtab, from the parser), loaded into a real bash and asked what
it offers; zsh and tcsh scripts are printed too."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")


def completion(shell: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "icloudfs", "completion", shell], capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.fixture(scope="module")
def script() -> str:
    return completion("bash")


def offered(script: str, line: str, cwd: Path | None = None) -> list[str]:
    """What bash completes for ``line`` (the cursor at its end)."""
    function = re.search(r"complete .*-F (\S+) icloudfs", script)
    assert function is not None, "the script registers a function for icloudfs"
    words = line.split() + ([""] if line.endswith(" ") else [])
    probe = f"""{script}
COMP_WORDS=({" ".join(repr(w) if w else '""' for w in words)}); COMP_CWORD={len(words) - 1}
COMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}
{function.group(1)} icloudfs "{words[-1]}" "{words[-2] if len(words) > 1 else ""}"
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True, cwd=cwd)
    return sorted(done.stdout.split())


def test_commands_subcommands_options_and_choices(script: str) -> None:
    assert offered(script, "icloudfs mo") == ["mount"]
    assert offered(script, "icloudfs token ") == ["create", "list", "revoke"]
    assert {"login", "logout", "mount", "unmount"} <= set(offered(script, "icloudfs "))
    assert offered(script, "icloudfs token create --desc") == ["--description"]
    assert "--force" in offered(script, "icloudfs unmount --f")
    assert offered(script, "icloudfs mount --log-format ") == ["json", "text"]


def test_a_mountpoint_completes_as_a_folder(script: str, tmp_path: Path) -> None:
    (tmp_path / "mnt").mkdir()
    (tmp_path / "notes.txt").write_text("not a mountpoint\n")
    assert offered(script, "icloudfs mount ", cwd=tmp_path) == ["mnt"]


@pytest.mark.parametrize("shell", ["zsh", "tcsh"])
def test_other_shells_get_their_own_script(shell: str) -> None:
    assert "icloudfs" in completion(shell) and "unmount" in completion(shell)
