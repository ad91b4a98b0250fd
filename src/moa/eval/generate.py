"""Writes the task sets moa ships, from a fixed seed: ``python -m moa.eval.generate``.

``arithmetic``: expressions, unit conversions and word problems with exact answers, in
three levels (easy: one step; medium: two steps or a decimal; hard: three steps, exact
division, chained units), interleaved easy, medium, hard so that any prefix (``--limit``)
keeps the mix. ``choice``: the questions below, written for moa, with the options shuffled
by the seed so the right letter is spread over A-D. A test checks that the shipped files
are exactly what this script writes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

SEED = 2026
LEVELS = ("easy", "medium", "hard")
PER_LEVEL = 40
FORMAT_NUMBER = "Give the final answer as a number on a last line of the form `ANSWER: <number>`."
FORMAT_LETTER = (
    "Give the letter of the correct option on a last line of the form `ANSWER: <letter>`."
)

Problem = tuple[str, int | str]  # question, exact answer
Maker = Callable[[random.Random], Problem]


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _easy_expression(r: random.Random) -> Problem:
    a, b = r.randint(2, 40), r.randint(2, 40)
    op = r.choice("+-*")
    if op == "-":
        a, b = max(a, b), min(a, b)
    answer = a + b if op == "+" else a - b if op == "-" else a * b
    return f"What is {a} {op} {b}?", answer


def _easy_conversion(r: random.Random) -> Problem:
    x = r.randint(2, 9)
    unit, small, factor = r.choice(
        [("kilometres", "metres", 1000), ("hours", "minutes", 60), ("kilograms", "grams", 1000)]
    )
    return f"How many {small} are in {x} {unit}?", x * factor


def _easy_word(r: random.Random) -> Problem:
    a, b = r.randint(5, 30), r.randint(2, 4)
    return f"Mia has {a} stickers and gets {b} more. How many stickers does she have?", a + b


def _medium_expression(r: random.Random) -> Problem:
    a, b, c = r.randint(2, 30), r.randint(2, 12), r.randint(2, 12)
    form = r.randrange(3)
    if form == 0:
        return f"What is ({a} + {b}) * {c}?", (a + b) * c
    if form == 1:
        return f"What is {a} + {b} * {c}?", a + b * c
    return f"What is {a} * {b} - {c}?", a * b - c


def _medium_conversion(r: random.Random) -> Problem:
    hours, minutes = r.randint(1, 5), r.choice([10, 15, 20, 30, 45])
    if r.random() < 0.5:
        question = (
            f"How many minutes are in {_count(hours, 'hour', 'hours')} and {minutes} minutes?"
        )
        return question, hours * 60 + minutes
    tenths = r.randint(11, 95)
    return f"How many metres are in {tenths / 10:g} kilometres?", tenths * 100


def _medium_word(r: random.Random) -> Problem:
    boxes, each, sold = r.randint(3, 9), r.randint(4, 12), r.randint(2, 15)
    question = (
        f"A shop has {boxes} boxes with {each} apples in each box. It sells {sold} apples. "
        "How many apples are left?"
    )
    return question, boxes * each - sold


def _hard_expression(r: random.Random) -> Problem:
    a, b, d = r.randint(2, 9), r.randint(2, 9), r.randint(2, 9)
    smallest = a * b // d + 1
    quotient = r.randint(smallest, smallest + 12)
    c = quotient * d - a * b  # positive, and (a * b + c) / d is exact
    return f"What is ({a} * {b} + {c}) / {d}?", quotient


def _hard_conversion(r: random.Random) -> Problem:
    form = r.randrange(3)
    if form == 0:
        yards, feet = r.randint(2, 9), r.randint(1, 2)
        question = f"How many inches are in {yards} yards and {_count(feet, 'foot', 'feet')}?"
        return question, (yards * 3 + feet) * 12
    if form == 1:
        speed = 5 * r.randint(1, 8)
        return f"A car moves at {speed} metres per second. What is that in km per hour?", (
            speed * 18 // 5
        )
    days, hours = r.randint(1, 4), r.randint(1, 23)
    span = f"{_count(days, 'day', 'days')} and {_count(hours, 'hour', 'hours')}"
    return f"How many minutes are in {span}?", (days * 24 + hours) * 60


def _hard_word(r: random.Random) -> Problem:
    price, count = r.randint(6, 15), r.randint(3, 8)
    discount = r.choice([2, 3, 5])
    paid = (price - discount) * count
    note = 10 * ((paid // 10) + r.randint(1, 3))
    question = (
        f"Notebooks cost {price} dollars each, with {discount} dollars off each notebook "
        f"today. Sam buys {count} notebooks and pays with {note} dollars. How much change, "
        "in dollars, does Sam get?"
    )
    return question, note - paid


MAKERS: dict[str, tuple[Maker, ...]] = {
    "easy": (_easy_expression, _easy_conversion, _easy_word),
    "medium": (_medium_expression, _medium_conversion, _medium_word),
    "hard": (_hard_expression, _hard_conversion, _hard_word),
}


def arithmetic_tasks(seed: int = SEED, per_level: int = PER_LEVEL) -> list[dict[str, Any]]:
    r = random.Random(seed)
    tasks = []
    for n in range(per_level * len(LEVELS)):
        level = LEVELS[n % len(LEVELS)]
        makers = MAKERS[level]
        question, answer = makers[(n // len(LEVELS)) % len(makers)](r)
        tasks.append(
            {
                "id": f"arith-{n + 1:03d}",
                "prompt": f"{question} {FORMAT_NUMBER}",
                "answer": str(answer),
                "scorer": "number",
                "difficulty": level,
            }
        )
    return tasks


# Written for moa: (question, right option, three wrong options).
QUESTIONS: tuple[tuple[str, str, str, str, str], ...] = (
    ("Which planet is closest to the Sun?", "Mercury", "Venus", "Mars", "Earth"),
    (
        "Which gas do plants take from the air for photosynthesis?",
        "Carbon dioxide",
        "Oxygen",
        "Nitrogen",
        "Helium",
    ),
    ("How many sides does a hexagon have?", "6", "5", "7", "8"),
    ("At sea level, water boils at how many degrees Celsius?", "100", "90", "80", "120"),
    ("Which is the largest ocean on Earth?", "Pacific", "Atlantic", "Indian", "Arctic"),
    (
        "All bloops are razzies and all razzies are lazzies. Are all bloops lazzies?",
        "Yes, necessarily",
        "No, never",
        "Only some of them",
        "It cannot be determined",
    ),
    ("What is the chemical symbol for sodium?", "Na", "So", "Sd", "Sn"),
    ("Which of these numbers is prime?", "29", "21", "27", "33"),
    (
        "Tom is taller than Ann, and Ann is taller than Raj. Who is the shortest?",
        "Raj",
        "Tom",
        "Ann",
        "They are the same height",
    ),
    ("How many minutes are in two and a half hours?", "150", "120", "130", "250"),
    ("Which organ pumps blood through the human body?", "Heart", "Liver", "Lungs", "Kidneys"),
    ("At what temperature in degrees Fahrenheit does water freeze?", "32", "0", "100", "212"),
    ("On which continent is most of Egypt?", "Africa", "Asia", "Europe", "South America"),
    ("What comes next: 2, 4, 8, 16, ...?", "32", "18", "24", "20"),
    ("Which of these animals is a mammal?", "Dolphin", "Shark", "Salmon", "Octopus"),
    (
        "A train leaves at 14:40 and the trip takes 50 minutes. When does it arrive?",
        "15:30",
        "15:20",
        "15:40",
        "15:10",
    ),
    ("Which word means the opposite of 'ancient'?", "Modern", "Old", "Antique", "Historic"),
    ("How many legs does a spider have?", "8", "6", "10", "4"),
    ("Which metal is liquid at room temperature?", "Mercury", "Iron", "Aluminium", "Copper"),
    (
        "If today is Wednesday, what day is it in 10 days?",
        "Saturday",
        "Friday",
        "Sunday",
        "Thursday",
    ),
    ("What is 15% of 200?", "30", "15", "20", "35"),
    (
        "Which of these lengths is the smallest?",
        "1 millimetre",
        "1 centimetre",
        "1 metre",
        "1 inch",
    ),
    (
        "Which force keeps the planets in orbit around the Sun?",
        "Gravity",
        "Magnetism",
        "Friction",
        "Air pressure",
    ),
    (
        "A recipe for 4 people uses 300 g of rice. How much rice is needed for 6 people?",
        "450 g",
        "400 g",
        "500 g",
        "600 g",
    ),
    ("Which word means the same as 'rapid'?", "Fast", "Slow", "Quiet", "Heavy"),
    ("Which of these is not a primary colour of light?", "Yellow", "Red", "Green", "Blue"),
    ("What is the capital of Japan?", "Tokyo", "Kyoto", "Osaka", "Seoul"),
    ("How many degrees are in a right angle?", "90", "45", "180", "60"),
    (
        "Which gas high in the atmosphere absorbs most of the Sun's ultraviolet light?",
        "Ozone",
        "Nitrogen",
        "Argon",
        "Hydrogen",
    ),
    (
        "A shirt costs 20 dollars after a 50% discount. What was its price before?",
        "40 dollars",
        "30 dollars",
        "10 dollars",
        "25 dollars",
    ),
    (
        "Which instrument measures air pressure?",
        "Barometer",
        "Thermometer",
        "Hygrometer",
        "Anemometer",
    ),
    ("What do bees make from nectar?", "Honey", "Silk", "Pollen", "Resin"),
    (
        "Five machines make five widgets in five minutes. How long do 100 machines take to "
        "make 100 widgets?",
        "5 minutes",
        "100 minutes",
        "20 minutes",
        "1 minute",
    ),
    ("Which number is the largest?", "0.5", "0.45", "0.405", "0.05"),
    ("Which of these energy sources is renewable?", "Wind", "Coal", "Natural gas", "Oil"),
    ("In which direction does the Sun rise?", "East", "West", "North", "South"),
    ("How many hours are in three days?", "72", "36", "48", "96"),
    (
        "Which shape has every point of its edge at the same distance from its centre?",
        "Circle",
        "Square",
        "Triangle",
        "Oval",
    ),
    (
        "A pen and a notebook cost 3.20 dollars together, and the notebook costs 2.00 dollars "
        "more than the pen. How much does the pen cost?",
        "0.60 dollars",
        "1.20 dollars",
        "1.00 dollars",
        "0.40 dollars",
    ),
    (
        "Which is heavier: a kilogram of feathers or a kilogram of iron?",
        "They weigh the same",
        "The iron",
        "The feathers",
        "It depends on the volume",
    ),
)


def choice_tasks(seed: int = SEED) -> list[dict[str, Any]]:
    r = random.Random(seed)
    tasks = []
    for n, (question, right, *wrong) in enumerate(QUESTIONS, 1):
        options = [right, *wrong]
        r.shuffle(options)
        listed = "\n".join(f"{chr(65 + i)}) {option}" for i, option in enumerate(options))
        tasks.append(
            {
                "id": f"choice-{n:02d}",
                "prompt": f"{question}\n{listed}\n{FORMAT_LETTER}",
                "answer": chr(65 + options.index(right)),
                "scorer": "choice",
                "choices": options,
            }
        )
    return tasks


def jsonl(tasks: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(task, ensure_ascii=False) + "\n" for task in tasks)


SETS: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "arithmetic.jsonl": arithmetic_tasks,
    "choice.jsonl": choice_tasks,
}


def main() -> None:
    data = Path(__file__).parent / "data"
    for name, make in SETS.items():
        (data / name).write_text(jsonl(make()), encoding="utf-8")
        print(f"wrote {data / name}")


if __name__ == "__main__":
    main()
