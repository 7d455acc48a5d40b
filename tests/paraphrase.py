"""Deterministic paraphrases of GSM8K questions for the neighbour tests and benchmarks.

``paraphrase`` rewrites a question by word substitution (a fixed table of synonyms and near-synonyms of the
words GSM8K uses most, and person names swapped for others) and reordering (the final question sentence moves
to the front; two-part sentences joined by "and" swap their parts). It keeps numbers, so the rewritten
problem is the same problem in other words. ``hard=True`` also swaps every remaining content word found in
``HARD_SYNONYMS`` (looser stand-ins: "ducks" -> "birds"), which is how the tests make paraphrases that share
as few informative words with the item as this table allows.
"""

from __future__ import annotations

import re

SYNONYMS = {
    "buys": "purchases",
    "buy": "purchase",
    "bought": "purchased",
    "buying": "purchasing",
    "sells": "vends",
    "sold": "vended",
    "sell": "vend",
    "selling": "vending",
    "has": "owns",
    "have": "own",
    "had": "owned",
    "gets": "receives",
    "get": "receive",
    "got": "received",
    "gives": "hands",
    "gave": "handed",
    "give": "hand",
    "makes": "earns",
    "make": "earn",
    "made": "earned",
    "spends": "uses up",
    "spend": "use up",
    "spent": "used up",
    "pays": "hands over",
    "pay": "hand over",
    "paid": "handed over",
    "wants": "would like",
    "needs": "requires",
    "need": "require",
    "each": "every single",
    "every": "each",
    "total": "overall",
    "cost": "price",
    "costs": "is priced at",
    "money": "cash",
    "dollars": "bucks",
    "store": "shop",
    "car": "automobile",
    "cars": "automobiles",
    "house": "home",
    "children": "kids",
    "child": "kid",
    "friends": "pals",
    "friend": "pal",
    "students": "pupils",
    "student": "pupil",
    "school": "academy",
    "company": "firm",
    "people": "persons",
    "decides": "chooses",
    "decided": "chose",
    "takes": "needs",
    "took": "needed",
    "remaining": "leftover",
    "rest": "remainder",
    "large": "big",
    "small": "little",
    "begins": "starts",
    "started": "began",
    "finished": "completed",
    "trip": "journey",
    "shoes": "sneakers",
    "boxes": "cartons",
    "box": "carton",
    "bag": "sack",
    "bags": "sacks",
    "cookies": "biscuits",
    "candy": "sweets",
    "shop": "store",
    "amount": "quantity",
    "number": "count",
    "average": "mean",
    "twice": "two times",
    "half": "one half",
    "week": "7-day period",
    "weeks": "7-day periods",
    "month": "calendar month",
    "hours": "hrs",
    "hour": "hr",
    "minutes": "mins",
    "minute": "min",
    "calculate": "work out",
    "find": "determine",
    "together": "combined",
    "combined": "together",
    "fewer": "less",
    "extra": "additional",
    "profit": "gain",
    "price": "cost",
    "worth": "valued at",
    "teacher": "instructor",
    "farm": "ranch",
    "farmer": "rancher",
    "daily": "each day",
    "fresh": "freshly laid",
    "mother": "mom",
    "father": "dad",
    "sister": "sibling",
    "brother": "sibling",
    "girls": "young women",
    "boys": "young men",
    "puppies": "young dogs",
    "dog": "hound",
    "dogs": "hounds",
    "gallons": "gal",
    "pounds": "lbs",
    "feet": "ft",
    "inches": "in",
    "miles": "mi",
    "job": "work",
    "work": "labor",
    "works": "labors",
    "earns": "makes",
    "save": "put aside",
    "saves": "puts aside",
    "saved": "put aside",
    "party": "celebration",
    "game": "match",
    "games": "matches",
    "pieces": "parts",
    "piece": "part",
    "slices": "servings",
    "plants": "greenery",
    "flowers": "blooms",
    "tree": "sapling",
    "trees": "saplings",
    "books": "volumes",
    "book": "volume",
    "pages": "sheets",
    "class": "group",
    "team": "squad",
    "truck": "lorry",
    "bus": "coach",
    "ride": "journey",
    "walk": "stroll",
    "run": "jog",
    "runs": "jogs",
}

HARD_SYNONYMS = {
    "ducks": "birds",
    "duck": "bird",
    "eggs": "ovals",
    "egg": "oval",
    "muffins": "pastries",
    "breakfast": "the morning meal",
    "market": "bazaar",
    "apples": "fruits",
    "oranges": "citrus fruits",
    "bananas": "yellow fruits",
    "chickens": "hens",
    "fish": "swimmers",
    "marbles": "glass balls",
    "stickers": "decals",
    "balloons": "inflatables",
    "bottles": "flasks",
    "pens": "writing tools",
    "cards": "tickets",
    "toys": "playthings",
    "cupcakes": "small cakes",
    "pizza": "pie",
    "water": "liquid",
    "repairs": "fixes",
    "value": "worth",
    "sprints": "dashes",
    "meters": "metres",
    "robe": "gown",
    "fiber": "thread",
    "bolts": "rolls",
    "milk": "dairy drink",
    "tickets": "passes",
    "birds": "fowl",
    "cats": "felines",
    "cat": "feline",
    "horses": "steeds",
    "cows": "cattle",
    "pigs": "hogs",
    "goats": "kids",
    "sheep": "ewes",
    "rabbits": "bunnies",
    "chocolate": "cocoa",
    "cake": "gateau",
    "cakes": "gateaux",
    "bread": "loaves",
    "cheese": "dairy",
    "beans": "legumes",
    "tomatoes": "vegetables",
    "garden": "yard",
    "lemonade": "citrus drink",
    "coffee": "java",
    "tea": "brew",
    "pencils": "crayons",
    "paint": "colour",
    "wall": "partition",
    "room": "chamber",
    "bike": "bicycle",
    "boat": "vessel",
    "plane": "aircraft",
    "train": "railway",
    "gas": "fuel",
    "phone": "mobile",
    "computer": "laptop",
    "movie": "film",
    "songs": "tunes",
    "shirts": "tops",
    "dress": "gown",
    "hats": "caps",
    "socks": "hosiery",
    "jewelry": "jewels",
    "necklace": "pendant",
    "ring": "band",
    "coins": "change",
    "salary": "wage",
    "rent": "lease payment",
    "tax": "levy",
    "discount": "reduction",
    "sale": "promotion",
    "restaurant": "eatery",
    "hotel": "inn",
    "beach": "seashore",
    "park": "green",
    "zoo": "menagerie",
    "library": "reading room",
    "museum": "gallery",
    "hospital": "clinic",
    "doctor": "physician",
    "nurse": "carer",
}

NAMES = [
    "Priya",
    "Tomas",
    "Ingrid",
    "Kwame",
    "Yusuf",
    "Mei",
    "Rafael",
    "Aiko",
    "Dmitri",
    "Lucia",
    "Obi",
    "Freya",
    "Hamid",
    "Soren",
    "Nadia",
    "Emeka",
]
# capitalized sentence openers that are not names
_OPENERS = set(
    "a an the he she it they we you i his her its their this that these those there here how what which who "
    "when where why if in on at for after before during each every all some many much one two three four "
    "five six seven eight nine ten then so but and or as at by from with without while since until mr mrs "
    "ms dr if after".split()
)
_SENTENCE = re.compile(r"(?<=[.?!])\s+")
_WORD = re.compile(r"[A-Za-z]+")


def _swap(word: str, table: dict[str, str]) -> str:
    low = word.lower()
    if low not in table:
        return word
    new = table[low]
    return new[:1].upper() + new[1:] if word[:1].isupper() else new


def paraphrase(question: str, seed: int, hard: bool = False) -> str:
    """The question rewritten by substitution and reordering (see the module docstring)."""
    sentences = [s for s in _SENTENCE.split(question.strip()) if s]
    names: dict[str, str] = {}
    out = []
    for k, s in enumerate(sentences):
        words = s.split(" ")
        for i, w in enumerate(words):
            m = _WORD.search(w)
            if not m:
                continue
            core = m.group(0)
            # a capitalized word that is not the sentence's first word, or a known name anywhere: a name
            is_name = (
                core[:1].isupper()
                and core.lower() not in SYNONYMS
                and core.lower() not in HARD_SYNONYMS
                and (i > 0 or core in names or core.lower() not in _OPENERS)
            )
            if is_name and len(core) > 2:
                names.setdefault(core, NAMES[(seed + len(names)) % len(NAMES)])
                new = names[core]
            else:
                new = _swap(core, SYNONYMS)
                if hard and new == core:
                    new = _swap(core, HARD_SYNONYMS)
            words[i] = w[: m.start()] + new + w[m.end() :]
        s = " ".join(words)
        parts = s.rstrip(".").split(" and ", 1)
        if (
            len(parts) == 2
            and (seed + k) % 2 == 0
            and len(parts[0].split()) > 2
            and len(parts[1].split()) > 2
        ):
            s = parts[1].rstrip(".") + " and " + parts[0][:1].lower() + parts[0][1:] + "."
        out.append(s)
    if len(out) > 1:
        out = out[-1:] + out[:-1]  # the question first
    return " ".join(out)
