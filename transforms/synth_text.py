"""Word banks for synthetic contracts: clause text, people, companies and document titles (seeded)."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

_HEADINGS = ("Services", "Term", "Payment", "Confidentiality", "Intellectual Property", "Warranties",
             "Limitation of Liability", "Termination", "Governing Law", "Notices", "Assignment",
             "Force Majeure", "Entire Agreement", "Severability", "Indemnification", "Insurance",
             "Non-Solicitation", "Dispute Resolution", "Amendments", "Counterparts")
_SENTENCES = (
    "The Provider shall perform the services described in Schedule A with due care and skill.",
    "The Client shall pay each undisputed invoice within thirty (30) days of its receipt.",
    "This Agreement commences on the Effective Date and continues for a period of twelve (12) months.",
    "Either party may terminate this Agreement by giving sixty (60) days' written notice to the other.",
    "Each party shall keep confidential all information disclosed to it under this Agreement.",
    "Nothing in this Agreement transfers ownership of any pre-existing intellectual property.",
    "The Provider warrants that the deliverables will conform in all material respects to the specification.",
    "Neither party shall be liable for any indirect, incidental or consequential loss or damage.",
    "This Agreement is governed by and construed in accordance with the laws of the State of Delaware.",
    "All notices shall be in writing and delivered by hand, by registered mail or by electronic mail.",
    "Neither party may assign its rights hereunder without the prior written consent of the other party.",
    "Neither party is responsible for any failure to perform caused by events beyond its reasonable control.",
    "This Agreement constitutes the entire agreement between the parties and supersedes all prior discussions.",
    "If any provision is held invalid, the remaining provisions shall continue in full force and effect.",
    "The Provider shall indemnify the Client against all claims arising from its breach of this Agreement.",
    "The Provider shall maintain adequate insurance cover for the duration of this Agreement.",
    "Late payments bear interest at the rate of one percent (1%) per month until paid in full.",
    "Any dispute shall first be referred to the senior management of both parties for resolution.",
    "No amendment of this Agreement is effective unless it is in writing and signed by both parties.",
    "This Agreement may be executed in counterparts, each of which is deemed an original.",
    "The fees set out in Schedule B are exclusive of value added tax and similar levies.",
    "Upon termination, each party shall return or destroy the confidential information of the other.",
    "The Client shall provide the Provider with timely access to its premises, systems and personnel.",
    "Time is of the essence with respect to the delivery dates set out in the project plan.",
)
FIRST_NAMES = ("James", "Maria", "Robert", "Linda", "Ahmed", "Sofia", "Chen", "Olga", "David", "Amara",
               "Lucas", "Hannah", "Kenji", "Priya", "Tomás", "Ingrid", "Samuel", "Fatima", "Pavel", "Elena")
LAST_NAMES = ("Whitfield", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Brennan", "Kowalski", "Haddad",
              "Fernández", "Novak", "Schreiber", "Castellano", "Abernathy", "Petrov", "Nakamura", "Osei")
COMPANIES = ("Acme Holdings Ltd.", "Northwind Logistics Inc.", "Blue Harbor Partners LLP",
             "Kestrel Engineering GmbH", "Silverline Software Corp.", "Meridian Property Group",
             "Oakridge Capital LLC", "Lumen Health Services", "Granite & Co. Builders", "Vega Analytics S.A.")
TITLES = ("Service Agreement", "Lease Agreement", "Non-Disclosure Agreement", "Consulting Agreement",
          "Purchase Agreement", "Employment Contract", "Loan Agreement", "Supply Agreement",
          "Licence Agreement", "Partnership Agreement", "Maintenance Contract", "Sales Contract")
LABELS = ("Signature:", "Signed:", "By:", "Signature:", "Authorized Signature:")


def clause_texts(rng: np.random.Generator, parties: tuple[str, str]) -> Iterator[tuple[str, str]]:
    """An endless sequence of ``(heading, body)`` clauses of 2-5 sentences, sometimes naming the parties."""
    while True:
        heading = _HEADINGS[int(rng.integers(len(_HEADINGS)))]
        idx = rng.choice(len(_SENTENCES), size=int(rng.integers(2, 6)), replace=False)
        body = " ".join(_SENTENCES[int(i)] for i in idx)
        if rng.random() < 0.3:
            body += f" {parties[int(rng.integers(2))]} acknowledges the foregoing."
        yield heading, body


def person_name(rng: np.random.Generator) -> str:
    """A first and last name (some non-ASCII)."""
    return f"{FIRST_NAMES[int(rng.integers(len(FIRST_NAMES)))]} {LAST_NAMES[int(rng.integers(len(LAST_NAMES)))]}"


def pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    """One of ``options``, drawn from ``rng``."""
    return options[int(rng.integers(len(options)))]
