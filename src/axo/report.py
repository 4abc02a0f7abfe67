"""Tables and views for people: dataset statistics, and tokens colored by whether they train."""

def print_data_stats(data) -> None:
    """One column per dataset, one line per statistic (it stays readable on a narrow terminal). The
    statistics are those the method's rows have: preference rows add prompt and answer lengths,
    GRPO prompts their prompt length."""
    from rich.console import Console
    from rich.table import Table

    datasets = [row for row in data.stats if "rows_in" in row]
    names = list(dict.fromkeys(k for row in datasets for k in row if k not in ("dataset", "path")))
    table = Table(title="Prepared data" + (" (from cache)" if data.cache_hit else ""))
    table.add_column("")
    for row in datasets:
        table.add_column(f"{row['dataset']}\n{row['path']}", justify="right", overflow="fold")
    for stat in names:
        table.add_row(stat.replace("_", " "), *(f"{row[stat]:,}" if stat in row else "-" for row in datasets))
    console = Console()
    console.print(table)
    for row in data.stats:
        if "removed" in row:
            console.print(f"exact deduplication removed {row['removed']}")
    eval_rows = len(data.eval) if data.eval is not None else 0
    train_rows = f"{len(data.train):,}" if hasattr(data.train, "__len__") else "streamed"
    console.print(f"train rows: {train_rows}   eval rows: {eval_rows:,}")


def print_token_view(tokenizer, rows, n: int) -> None:
    """`axo preprocess --debug`: each token in green when trained, dim red when masked."""
    from rich.console import Console
    from rich.text import Text

    console = Console()
    console.print(Text("trained", style="bold green"), Text(" / "), Text("masked", style="dim red"))
    for i, row in enumerate(rows.select(range(min(n, len(rows))))):
        view = Text()
        view.append(f"\n── row {i} ({len(row['input_ids'])} tokens) ──\n", style="bold")
        for piece, trained in token_pieces(tokenizer, row):
            view.append(piece.replace("\n", "\\n\n"), style="green" if trained else "dim red")
        console.print(view)


def token_pieces(tokenizer, row: dict) -> list[tuple[str, bool]]:
    """A tokenized row as (each token's text, whether it trains)."""
    from axo.data.tokenize import IGNORE

    return [(tokenizer.decode([token]), label != IGNORE) for token, label in zip(row["input_ids"], row["labels"])]
