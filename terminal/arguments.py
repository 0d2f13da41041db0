"""What every command's `--help` shares: each option's help ends with its default."""

import argparse


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default; required options say so, and options whose
    absence means something (None) or flags say it in their own words."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.required:
            return f"{text} (required)".strip()
        if action.default in (None, []) or isinstance(action.default, bool) or "default" in text:
            return text  # absence or a flag said in the help's own words, or its default already
        return super()._get_help_string(action)
