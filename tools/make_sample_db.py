"""Build ``previsio_sdk/data/sample.db``, the sample database of ``previsio quickstart``.

Deterministic (fixed seed): running it again gives the same rows. Run from the repository root.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "previsio_sdk" / "data" / "sample.db"
COUNTRIES = ["FR", "DE", "ES", "IT", "GB", "US", "CA", "JP"]
STATUSES = ["delivered", "shipped", "pending", "cancelled"]


def main() -> None:
    rng = random.Random(20261122)
    TARGET.unlink(missing_ok=True)
    con = sqlite3.connect(TARGET)
    con.executescript(
        """
        CREATE TABLE customers (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            country TEXT NOT NULL,
            signup_date DATE NOT NULL,
            is_active BOOLEAN NOT NULL
        );
        CREATE TABLE orders (
            id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customers(id),
            ordered_at TIMESTAMP NOT NULL,
            amount REAL NOT NULL,
            quantity INTEGER NOT NULL,
            status TEXT NOT NULL,
            discount REAL
        );
        """
    )
    start = date(2024, 1, 1)
    customers = [
        (
            i,
            f"Customer {i:03d}",
            rng.choice(COUNTRIES),
            (start + timedelta(days=rng.randrange(365))).isoformat(),
            rng.random() < 0.8,
        )
        for i in range(1, 201)
    ]
    con.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?)", customers)
    t0 = datetime(2024, 1, 1, 8, 0, 0)
    orders = []
    for i in range(1, 2001):
        at = t0 + timedelta(minutes=rng.randrange(60 * 24 * 365))
        discount = round(rng.choice([0.05, 0.1, 0.2]), 2) if rng.random() < 0.3 else None
        orders.append(
            (
                i,
                rng.randrange(1, 201),
                at.isoformat(sep=" "),
                round(rng.uniform(5, 500), 2),
                rng.randrange(1, 10),
                rng.choice(STATUSES),
                discount,
            )
        )
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?)", orders)
    con.commit()
    con.execute("VACUUM")
    con.close()
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
