"""Tables for people: dataset statistics and the like."""


def print_data_stats(data) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Prepared data" + (" (from cache)" if data.cache_hit else ""))
    columns = ["dataset", "rows_in", "rows_out", "dropped_too_long", "tokens", "trained_tokens",
               "len_p50", "len_p95", "len_max"]
    for col in columns:
        table.add_column(col.replace("_", " "), justify="left" if col == "dataset" else "right")
    for row in data.stats:
        table.add_row(*(f"{row[c]:,}" if isinstance(row[c], int) else str(row[c]) for c in columns))
    console = Console()
    console.print(table)
    console.print(f"train rows: {len(data.train):,}   eval rows: {len(data.eval) if data.eval else 0:,}")
