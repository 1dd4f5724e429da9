"""MMIO checks on a Board: region sizes from the type data, windows within their regions, overlaps.

Regions that overlap at one priority are an error naming both; the pairs of
a group that overlap one another are listed up to MAX_OVERLAPS_LISTED, the
rest counted. A region whose size is unknown, or measured with defaults
while the component sets a property that may change it, is a note.
"""

from __future__ import annotations

import heapq

from ..errors import Collector
from ..source import SourceLocation
from .expr import ExprError, evaluate
from .model import U64_MAX, Board, Component, Mmio
from .typecheck import env_of, shaping_props


def region_size(comp: Component, region: int) -> int | None:
    """The size of MMIO region ``region`` from the type data (a hand-table expression or a measured size)."""
    return region_size_or_why(comp, region)[0]


def _size_followers(comp: Component) -> list[str]:
    """The properties ``comp`` sets that may change its regions in a way the type data does not compute."""
    info = comp.info
    follows = sorted(set(info.mmio_follows) & set(comp.props))
    return follows or (shaping_props(comp) if info.mmio_from_defaults else [])


def region_size_or_why(comp: Component, region: int) -> tuple[int | None, str]:
    """(size, "") of MMIO region ``region`` from the type data, or (None, why it is not known)."""
    info = comp.info
    sizes = info.mmio
    if sizes is None or region >= len(sizes):
        why = (info.device.probe_note if info.device is not None and info.device.probe_note else "no size measured")
        return None, f"the size of {comp.type}'s region {region} is unknown ({why})"
    follows = _size_followers(comp)
    if follows:
        size = sizes[region]
        shown = f"{size:#x} bytes" if isinstance(size, int) else str(size)
        return None, (f"{comp.type}'s region {region} is {shown} with default properties; "
                      f"{comp.id} sets {', '.join(follows)}, which may change it")
    spec = sizes[region]
    if isinstance(spec, int):
        return spec, ""
    try:
        value = evaluate(spec, env_of(comp))
    except ExprError:
        return None, f"the size of {comp.type}'s region {region} ({spec}) cannot be computed"
    return (value, "") if isinstance(value, int) else (None, f"{spec} is not an integer")


#: Overlapping pairs listed per group of regions that overlap at one priority;
#: the rest of the group is summed up in one more problem, so that N regions at
#: one address give a bounded report, not N * (N - 1) / 2 lines.
MAX_OVERLAPS_LISTED = 32

_Span = tuple[int, int, int, Component, int]  # start, end, priority, component, index in comp.mmio


def check_mmio(board: Board, problems: Collector) -> None:
    """Problems for regions that overlap at one priority or windows beyond their region; notes for unknown sizes."""
    spans = _mmio_spans(board, problems)
    spans.sort(key=lambda s: (s[0], s[1], s[3].index, s[4]))
    # One sweep per priority (regions of different priorities may overlap),
    # all fed in address order, so that problems come in the same order.
    sweeps: dict[int, _OverlapSweep] = {}
    for span in spans:
        sweep = sweeps.get(span[2])
        if sweep is None:
            sweep = sweeps[span[2]] = _OverlapSweep(problems)
        sweep.add(span)
    for sweep in sweeps.values():
        sweep.end_group()
    check_sections(board, spans, problems)


#: Bytes of QEMU's target page under ``-M none``, per system. A flat view's sections are
#: numbered below it: system/physmem.c phys_section_add asserts ``sections_nb <
#: TARGET_PAGE_SIZE`` (the number shares an IOTLB entry with a page address). aarch64's
#: pages vary (TARGET_PAGE_BITS_VARY, at least 10 bits: target/arm/cpu-param.h) and are fixed
#: in cpu_exec_init_all before any CPU exists; ``none`` asks no minimum_page_bits, so they
#: stay 1 KiB. RISC-V's are 4 KiB (target/riscv/cpu-param.h).
TARGET_PAGE_SIZE = {"aarch64": 1024, "riscv32": 4096, "riscv64": 4096}

#: Share of the sections past which a board gets a note: devices' own subregions and what the
#: guest maps (PCI BARs) take sections too.
SECTIONS_NOTE_SHARE = 0.9


def check_sections(board: Board, spans: list[_Span], problems: Collector) -> None:
    """An error when the board's mappings alone need more flat-view sections than QEMU can number.

    Counted as system/physmem.c adds them (register_subpage, register_multipage): a run
    of whole pages is one section, each part of a page is one more, and each page split
    that way one more for its subpage. Overlaps and devices' own subregions only add to
    this, so the error is certain; near the limit it is a note.
    """
    page = TARGET_PAGE_SIZE.get(board.system or "")
    if page is None:
        return
    used = 1  # PHYS_SECTION_UNASSIGNED
    split: set[int] = set()
    for start, end, _prio, comp, k in sorted(spans, key=lambda s: (s[0], s[1])):
        used += _sections(start, end, page, split)
        if used > page:
            m = comp.mmio[k]
            problems.add(m.location, f"{comp.yaml_path}.mmio",
                         f"the memory map needs at least {used} flat-view sections by this region (in address "
                         f"order), and QEMU numbers at most {page} ({board.system} has {page}-byte target pages "
                         "under -M none): it would abort mapping it (phys_section_add)",
                         "map fewer regions: one sysbus-memory instead of several adjacent ones, or regions "
                         "that cover whole pages")
            return
    if used > page * SECTIONS_NOTE_SHARE:
        problems.note(None, "components",
                      f"the memory map needs at least {used} of the {page} flat-view sections QEMU can number "
                      f"on {board.system}; devices' own subregions and what the guest maps (PCI BARs) need more, "
                      "and QEMU aborts past the limit (phys_section_add)")


def _sections(start: int, end: int, page: int, split: set[int]) -> int:
    """Sections [start, end] adds: one per part of a page (and one per newly split page), one for whole pages."""
    first, last = start // page, end // page
    head, tail = start % page != 0, (end + 1) % page != 0
    parts = [first] if head or (first == last and tail) else []
    if tail and last not in parts:
        parts.append(last)
    whole = (last - first + 1) - len(parts)
    added = len(parts) + (1 if whole > 0 else 0)
    for p in parts:
        if p not in split:
            split.add(p)
            added += 1
    return added


def _mmio_spans(board: Board, problems: Collector) -> list[_Span]:
    """Every mapping with a known size, as a span: a region's, or a window's; problems for those that cannot be.

    A window (``offset``) occupies [addr, addr + size), whatever the size of
    its region, so several windows of one region at several addresses are
    spans of their own and overlap only what they cover.
    """
    spans: list[_Span] = []
    for comp in board.components:
        info = comp.info
        for k, m in enumerate(comp.mmio):
            where = f"{comp.yaml_path}.mmio"
            if info.known and not info.sysbus:
                problems.add(m.location, where, f"{comp.type} is not a sysbus device: it has no MMIO regions to map")
                continue
            if info.mmio is not None and m.region >= len(info.mmio):
                follows = _size_followers(comp)
                if not follows:
                    problems.add(m.location, where,
                                 f"{comp.type} has {len(info.mmio)} MMIO region(s); region {m.region} does not exist")
                    continue
                problems.note(m.location, where,
                              f"{comp.type} has {len(info.mmio)} MMIO region(s) with default properties; {comp.id} "
                              f"sets {', '.join(follows)}, so region {m.region} is not checked",
                              "QEMU checks it when the region is mapped")
                if m.size is None:
                    continue
            if m.addr < 0:
                problems.add(m.location, where, f"negative address {m.addr}")
                continue
            if m.window and not _window_fits(comp, m, where, problems):
                continue
            size, why = (m.size, "") if m.size is not None else region_size_or_why(comp, m.region)
            if size is None:
                problems.note(m.location, where, f"overlaps of {comp.id} region {m.region} are not checked: {why}",
                              "give the region's size in the mapping (mmio: [{addr: ..., size: ...}])")
            if size is None or size <= 0:
                continue
            end = m.addr + size - 1
            if end > U64_MAX:
                problems.add(m.location, where, f"region [{m.addr:#x}, {end:#x}] ends beyond the 64-bit address space")
                continue
            spans.append((m.addr, end, m.priority, comp, k))
    return spans


def _window_fits(comp: Component, m: Mmio, where: str, problems: Collector) -> bool:
    """Whether window ``m`` is not empty and, when the region's size is known, lies within the region."""
    assert m.offset is not None and m.size is not None
    if m.size == 0:
        problems.add(m.location, where, f"{m.describe(comp.id)}: a window's size must not be zero")
        return False
    region = region_size(comp, m.region)
    if region is not None and m.offset + m.size > region:
        problems.add(m.location, where,
                     f"{m.describe(comp.id)} does not lie within the region ({region:#x} bytes)",
                     f"a window of it ends at {region:#x} at most: offset + size <= {region:#x}")
        return False
    return True


def _span_location(span: _Span) -> SourceLocation | None:
    return span[3].mmio[span[4]].location or span[3].location


def _span_name(span: _Span) -> str:
    return span[3].mmio[span[4]].describe(span[3].id)


class _OverlapSweep:
    """Overlaps among the regions of one priority, fed in address order.

    A group is a run of regions each overlapping an earlier one of the run.
    Its first MAX_OVERLAPS_LISTED pairs are listed, each naming both regions
    (a region with every earlier region still open); the others are only
    counted, with a heap of the open regions' ends, so a group of N costs
    O(N log N) and its report is bounded.
    """

    def __init__(self, problems: Collector) -> None:
        self.problems = problems
        self.open: list[_Span] = []  # the open regions, in address order, while pairs are still listed
        self.ends: list[int] = []  # heap: the end of every open region
        self.first: _Span | None = None
        self.group_end = -1
        self.regions = 0
        self.pairs = 0
        self.listed = 0
        self.unlisted: _Span | None = None  # the region of the first pair not listed

    def add(self, span: _Span) -> None:
        start, end = span[0], span[1]
        if start > self.group_end:
            self.end_group()
            self.first, self.regions, self.pairs, self.listed, self.unlisted = span, 0, 0, 0, None
            self.open, self.ends = [], []
        ends = self.ends
        while ends and ends[0] < start:
            heapq.heappop(ends)
        # Every open region began no later and ends at or after ``start``: each overlaps this one.
        if self.listed < MAX_OVERLAPS_LISTED:
            self.open = [a for a in self.open if a[1] >= start]
            for other in self.open:
                if self.listed == MAX_OVERLAPS_LISTED:
                    self.unlisted = span
                    break
                self._report(other, span)
                self.listed += 1
            self.open.append(span)
        elif self.unlisted is None and ends:
            self.unlisted = span
        self.pairs += len(ends)
        heapq.heappush(ends, end)
        self.group_end = max(self.group_end, end)
        self.regions += 1

    def _report(self, a: _Span, b: _Span) -> None:
        a_start, a_end, prio = a[0], a[1], a[2]
        b_start, b_end, b_comp = b[0], b[1], b[3]
        self.problems.add(
            _span_location(b), f"{b_comp.yaml_path}.mmio",
            f"{_span_name(b)} [{b_start:#x}, {b_end:#x}] overlaps "
            f"{_span_name(a)} [{a_start:#x}, {a_end:#x}] at the same priority {prio}",
            "move one of them, or give the one that should win a higher priority",
        )

    def end_group(self) -> None:
        """Sum up the pairs of the group just ended that were not listed."""
        if self.first is None or self.unlisted is None:
            return
        b = self.unlisted
        self.problems.add(
            _span_location(b), f"{b[3].yaml_path}.mmio",
            f"{self.pairs - self.listed:,} more overlapping pairs at the same priority {b[2]} are not listed, "
            f"from {_span_name(b)} [{b[0]:#x}, {b[1]:#x}] on: {self.regions:,} regions overlap in "
            f"[{self.first[0]:#x}, {self.group_end:#x}] ({self.pairs:,} pairs; only the first "
            f"{MAX_OVERLAPS_LISTED} of a group are listed)",
            "move them apart, or give the ones that should win a higher priority",
        )
