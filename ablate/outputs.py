"""Write a study's tables and report from what its storage holds, so `ablate
run` and a later rebuild from storage produce the same files."""

from __future__ import annotations

from pathlib import Path

import optuna


def write_outputs(out: Path, study: optuna.Study) -> Path:
    """results.csv, results.json and the report; returns the index.html path."""
    from ablate.report import write_report
    from ablate.results import collect, write_tables

    meta = study.user_attrs["meta"]
    table, histories = collect(study, study.user_attrs["plan"], meta["factors"])
    write_tables(out, table, histories, meta)
    table, histories, meta = confirmed_only(table, histories, meta)
    return write_report(out, table, histories, meta)


def confirmed_only(table, histories, meta):
    """A search with a confirmation stage reports the confirmed runs; its search
    runs (one seed each, chosen for being good on it) are listed apart."""
    if "stage" not in table.columns or not (table["stage"] == "confirm").any():
        return table, histories, meta
    search = table[table["stage"] == "search"].sort_values("val_accuracy", ascending=False, kind="stable")
    main = table[table["stage"] == "confirm"].reset_index(drop=True)
    keep = set(zip(main["arm"], main["seed"]))
    runs = [{"arm": r["arm"], "seed": int(r["seed"]), "status": r["status"],
             "val_accuracy": r["val_accuracy"], "test_accuracy": r["test_accuracy"], "gap": r["gap"],
             "epochs": int(r["epochs"]), "confirmed": r["arm"] in set(main["arm"])}
            for r in search.to_dict("records")]
    meta = {**meta, "arms": list(dict.fromkeys(main["arm"])), "runs_total": len(main), "search_runs": runs}
    return main, [h for h in histories if (h["arm"], h["seed"]) in keep], meta
