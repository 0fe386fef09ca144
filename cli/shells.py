"""The shell side of completion: click's bash, zsh and fish classes, fixed for the values
spawnkit completes, which hold `=` and `,` (`--only=lint`, `unit[py=3.11,db=pg]`).

- bash splits words at `=` (COMP_WORDBREAKS), so click's script, which hands over the words,
  loses what was typed: ours hands over the line up to the cursor, and each answer is cut to
  the part bash replaces (its own word), as bash-completion's `__ltrim_colon_completions`
  does for `:`.
- zsh and fish replace the whole word: an answer for `--only=l` keeps its `--only=`.
- fish's script split each answer at every comma: ours at the first only.
"""

from __future__ import annotations

import os
import re

from click.shell_completion import (
    BashComplete,
    CompletionItem,
    FishComplete,
    ShellComplete,
    ZshComplete,
    add_completion_class,
    split_arg_string,
)

__all__ = ["register_shells"]

_BASH_SOURCE = """\
%(complete_func)s() {
    local IFS=$'\\n'
    local response completion
    response=$(env _SPAWNKIT_LINE="${COMP_LINE:0:COMP_POINT}" \
_SPAWNKIT_WORD="${COMP_WORDS[COMP_CWORD]}" %(complete_var)s=bash_complete $1)
    COMPREPLY=()
    for completion in $response; do
        case $completion in
            dir,*) COMPREPLY=(); compopt -o dirnames ;;
            file,*) COMPREPLY=(); compopt -o default ;;
            plain,*) COMPREPLY+=("${completion#plain,}") ;;
        esac
    done
    return 0
}

complete -o nosort -F %(complete_func)s %(prog_name)s
"""

_FISH_SOURCE = """\
function %(complete_func)s;
    set -l response (env %(complete_var)s=fish_complete COMP_WORDS=(commandline -cp) \
COMP_CWORD=(commandline -t) %(prog_name)s);
    for completion in $response;
        set -l metadata (string split -m1 "," $completion);
        if test $metadata[1] = "dir";
            __fish_complete_directories $metadata[2];
        else if test $metadata[1] = "file";
            __fish_complete_path $metadata[2];
        else if test $metadata[1] = "plain";
            echo $metadata[2];
        end;
    end;
end;

complete --no-files --command %(prog_name)s --arguments "(%(complete_func)s)";
"""


def _option_prefix(word: str) -> str:
    """`--only=` of `--only=li` (click completes the value alone), else nothing."""
    if word.startswith("-") and "=" in word:
        return word.partition("=")[0] + "="
    return ""


class _WholeWord(ShellComplete):
    """A shell that replaces the whole word with the answer: `--opt=` is put back."""

    _prefix = ""

    def get_completion_args(self) -> tuple[list[str], str]:
        args, incomplete = super().get_completion_args()
        self._prefix = _option_prefix(incomplete)
        return args, incomplete

    def format_completion(self, item: CompletionItem) -> str:
        if item.type == "plain":
            item = CompletionItem(self._prefix + item.value, type=item.type, help=item.help)
        return super().format_completion(item)


class _Zsh(_WholeWord, ZshComplete):
    pass


class _Fish(_WholeWord, FishComplete):
    source_template = _FISH_SOURCE


class _Bash(BashComplete):
    source_template = _BASH_SOURCE
    _typed = ""  # the word as spawnkit reads it (quotes and `=` kept together)

    def get_completion_args(self) -> tuple[list[str], str]:
        line = os.environ.get("_SPAWNKIT_LINE")
        if line is None:  # a script of click's own, sourced before
            return super().get_completion_args()
        words = split_arg_string(line)
        at_new_word = not line or line[-1].isspace()
        self._typed = "" if at_new_word or not words else words[-1]
        return (words[1:] if at_new_word else words[1:-1]), self._typed

    def format_completion(self, item: CompletionItem) -> str:
        if item.type != "plain":
            return super().format_completion(item)
        whole = _option_prefix(self._typed) + str(item.value)
        # bash replaces its own word only: the end of what was typed, after its last `=`
        # (its quotes gone: an answer needs none).
        bash_word = os.environ.get("_SPAWNKIT_WORD", self._typed)
        if bash_word in ("=", ":"):  # a break alone: readline replaces what follows it
            bash_word = ""
        bare = (split_arg_string(bash_word) or [""])[0]
        suffix = next((w for w in (bash_word, bare) if self._typed.endswith(w)), None)
        cut = len(self._typed) - len(suffix) if suffix is not None else 0
        # Its brackets escaped: bash would take `unit[py=3.11]` for a glob, and a file such as
        # `unit1` here would match it.
        return "plain," + re.sub(r"([][*?])", r"\\\1", whole[cut:])


def register_shells() -> None:
    """Put these in click's place, for `_SPAWNKIT_COMPLETE=bash_source` and the rest."""
    for cls, name in ((_Bash, "bash"), (_Zsh, "zsh"), (_Fish, "fish")):
        add_completion_class(cls, name)
