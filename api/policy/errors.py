"""The one error a policy file raises when it cannot be used."""


class PolicyError(Exception):
    """A policy that cannot be loaded. Each problem reads `FILE:LINE: where: what`.

    All problems found are reported together, so one run of `cheqpoint policy check` shows them
    all; `str(error)` is one problem per line.
    """

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))
