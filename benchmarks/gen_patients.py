"""Write N synthetic wide-CSV patients for the seed trial (deterministic; values around every bound)."""
from __future__ import annotations

import argparse
import random

HEADER = ["patient_id", "birth_date", "sex", "diabetes_duration", "BMI (kg/m2)", "insulin dose (U/kg/d)",
          "HbA1c", "fasting c-peptide", "medications", "conditions", "pregnant"]
MEDS = ["metformin", "sitagliptin;metformin", "insulin glargine", "semaglutide", "none", "", "dapagliflozin"]
CONDS = ["type 2 diabetes", "E11.9;I10", "drug abuse", "none", ""]


def rows(n: int, seed: int = 1):
    rng = random.Random(seed)
    for i in range(n):
        hba1c = f"{rng.uniform(40, 110):.0f} mmol/mol" if rng.random() < 0.2 else f"{rng.uniform(5.5, 13):.1f}"
        yield [f"P{i:08d}", f"{rng.randint(1945, 2008)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
               rng.choice("FM"), f"{rng.uniform(0, 30):.1f}", f"{rng.uniform(18, 45):.1f}",
               f"{rng.uniform(0.2, 1.5):.2f}", hba1c if rng.random() > 0.03 else "NA",
               f"{rng.uniform(0.1, 3):.2f}" if rng.random() > 0.1 else f"{rng.uniform(100, 900):.0f} pmol/L",
               rng.choice(MEDS), rng.choice(CONDS), rng.choice(["no", "no", "yes", ""])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("n", type=int)
    parser.add_argument("output")
    args = parser.parse_args()
    with open(args.output, "w", encoding="utf-8") as handle:
        handle.write(",".join(f'"{h}"' if "," in h else h for h in HEADER) + "\n")
        for row in rows(args.n):
            handle.write(",".join(row) + "\n")


if __name__ == "__main__":
    main()
