"""Forgetting, measured, under a finished run: how many offline ImageNet photos the network
recognised before the fine-tune and how many its fine-tuned body still recognises through the
old ImageNet head (measured in the worker, tlcore.train.forgetting; stored with the run).

- `forgetting_panel(result)`: the line (before, after) and the photos whose answer changed.
- `forgetting_cell(result)`: the same as one race-table cell; `race_caption` says what it means.

Not for: measuring it (tlcore.train.forgetting).
"""

from __future__ import annotations

import streamlit as st

from studio.i18n import imagenet_title, t
from tlcore.core.events import RunResult

CHANGED_SHOWN = 8  # photos listed whose answer changed


def forgetting_cell(result: RunResult | None) -> str:
    """'17 / 24' ImageNet photos recognised after the run, '0 / 24 (20)' with the number recognised
    with ImageNet's BatchNorm statistics put back where that differs; '–' where it does not apply."""
    f = result.forgetting if result else None
    if not f:
        return "–"
    bn = f.get("after_bn")
    return f"{f['after']} / {f['total']}" + (f" ({bn})" if bn is not None and bn != f["after"] else "")


def race_caption(results: list[RunResult | None]) -> None:
    """What the race table's ImageNet column means, with the pretrained network's own score."""
    first = next((r.forgetting for r in results if r and r.forgetting), None)
    if first:
        st.caption(t("caption.race_imagenet", column=t("race.col.imagenet"), before=f"{first['before']} / {first['total']}"))


def forgetting_panel(result: RunResult) -> None:
    """The line (before, after) and a small table of the photos whose answer changed."""
    f = result.forgetting
    if not f:
        return
    st.markdown(f"**{t('forget.title')}**")
    st.markdown(t("forget.line", before=f["before"], total=f["total"], after=f["after"]))
    bn = f.get("after_bn")
    if bn is not None and bn > f["after"]:  # putting ImageNet's statistics back brings photos back
        lost = f["before"] - f["after"]
        if bn >= f["before"]:
            st.markdown(t("forget.bn_all", after_bn=bn))
        else:
            st.markdown(t("forget.bn_part", after_bn=bn, lost=lost, back=bn - f["after"], rest=f["before"] - bn))
    changed = [p for p in f["photos"] if p["right_before"] != p["right_after"] or p["before"] != p["after"]]
    if changed:
        mark = {True: "✓", False: "✗"}
        shown = [_titles(p) for p in changed[:CHANGED_SHOWN]]
        st.dataframe(
            {
                t("forget.col.answer"): [answer for answer, _, _ in shown],
                t("forget.col.before"): [f"{mark[p['right_before']]} {before}" for p, (_, before, _) in zip(changed, shown)],
                t("forget.col.after"): [f"{mark[p['right_after']]} {after}" for p, (_, _, after) in zip(changed, shown)],
            },
            hide_index=True,
            width="stretch",
        )
        st.caption(t("forget.caption", changed=len(changed), total=f["total"]))
    else:
        st.caption(t("forget.unchanged", total=f["total"]))


def _titles(photo: dict) -> tuple[str, str, str]:
    """(answer, before, after) in the learner's language: by class id where the result has them
    (results from before the ids were kept name the classes in English)."""
    ids = photo.get("ids")
    if isinstance(ids, list) and len(ids) == 3:
        return tuple(imagenet_title(i) for i in ids)  # type: ignore[return-value]
    return photo["answer"], photo["before"], photo["after"]
