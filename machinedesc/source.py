"""Source locations: where in which YAML file a value came from, and through which includes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class SourceLocation:
    """A 1-based line and column in a file, plus the include chain that led there.

    ``chain`` lists the include sites that led to this file, innermost first:
    for a value that came from ``soc.yaml`` through ``variant.yaml``'s
    ``extends:`` it holds the location of that ``extends`` entry.
    """

    file: str
    line: int
    col: int
    chain: tuple[SourceLocation, ...] = ()

    def __post_init__(self) -> None:
        # The chain is flat: its entries are include sites, which need no chain
        # of their own (describe_chain prints only their positions). Nested
        # chains made hashing and comparing exponential in the include depth:
        # a 30-deep chain with one error never finished.
        if any(site.chain for site in self.chain):
            object.__setattr__(self, "chain", tuple(SourceLocation(s.file, s.line, s.col) for s in self.chain))

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    @property
    def short(self) -> str:
        """``file:line``, as plan comments show it."""
        return f"{self.file}:{self.line}"

    def describe_chain(self) -> list[str]:
        """Lines like ``  included from boards/v.yaml:3:10``, innermost first."""
        return [f"  included from {loc}" for loc in self.chain]
