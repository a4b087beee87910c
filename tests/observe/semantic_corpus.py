"""Outputs of a customer-support agent, generated deterministically from seeds.

- :data:`SUPPORT`: six intents, each said six ways (paraphrase templates) with varying names,
  amounts, orders and delays: what the agent normally answers.
- :data:`UPSELL`: a topic shift, marketing instead of support (a prompt gone wrong).
- :func:`json_reply`: a format shift, the same support facts as JSON instead of prose.

A corpus is a fixed set of texts (embedded once per test session); windows are drawn from it
with a seeded ``random.Random``.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

SUPPORT = {
    "refund": [
        "Hi {name}, your refund of {amount} euros for order {order} has been issued and should reach your account within {days} business days.",
        "Good news {name}: we've processed a {amount} EUR refund on order {order}. Expect it on your statement in about {days} days.",
        "{name}, the {amount} euro refund for order {order} is on its way; your bank usually shows it within {days} working days.",
        "Thanks for your patience, {name}. Order {order} has been refunded ({amount} euros), and the money should appear in {days} days.",
        "We have refunded {amount} euros to you for order {order}, {name}. Please allow up to {days} business days for it to arrive.",
        "Dear {name}, a refund of {amount} EUR was sent for your order {order}; it normally takes {days} days to show up.",
    ],
    "delay": [
        "Hi {name}, I'm sorry: order {order} is delayed at the carrier and should now arrive in {days} days.",
        "{name}, your parcel for order {order} is running late; the courier now expects to deliver it within {days} days.",
        "Apologies {name}, shipment {order} got held up in transit. The new delivery estimate is {days} days from today.",
        "Dear {name}, order {order} has been delayed by the carrier, and we now expect delivery in about {days} days.",
        "Sorry for the wait, {name}: the package for order {order} is behind schedule and should reach you in {days} days.",
        "{name}, there's a delay with order {order}; the shipping company says it will be delivered within {days} days.",
    ],
    "password": [
        "Hi {name}, I've sent a password reset link to your email; it expires in {days} hours.",
        "{name}, check your inbox: a link to reset your password is waiting there and stays valid for {days} hours.",
        "Dear {name}, we emailed you a password reset link. Please use it within {days} hours.",
        "A reset link for your account password is in your email, {name}; it will work for the next {days} hours.",
        "{name}, to change your password, open the reset link we just emailed you (valid {days} hours).",
        "Hello {name}, you'll find a password reset email in your inbox; the link expires after {days} hours.",
    ],
    "cancel": [
        "Hi {name}, your subscription has been cancelled and you won't be charged again after {days} days.",
        "{name}, we've cancelled your plan; your access continues for {days} more days and no further payments will be taken.",
        "Dear {name}, the cancellation went through. You keep access for {days} days and will not be billed again.",
        "Your subscription is now cancelled, {name}. Nothing more will be charged, and the service stays active for {days} days.",
        "Done, {name}: the plan is cancelled. You can still use it for {days} days, with no further charges.",
        "{name}, as requested we stopped your subscription; billing ends now and access ends in {days} days.",
    ],
    "address": [
        "Hi {name}, the delivery address on order {order} has been updated; it will ship in {days} days.",
        "{name}, we changed the shipping address for order {order} as you asked, and it leaves our warehouse in {days} days.",
        "Dear {name}, order {order} will now go to your new address; dispatch is planned in {days} days.",
        "The address for order {order} is corrected, {name}. We expect to ship it within {days} days.",
        "Done {name}: order {order} now has your updated delivery address and ships in about {days} days.",
        "{name}, your new address is saved on order {order}; the parcel should be dispatched in {days} days.",
    ],
    "damaged": [
        "Hi {name}, sorry your item from order {order} arrived damaged; a replacement ships today and arrives in {days} days.",
        "{name}, we're sending a new item to replace the broken one from order {order}; expect it within {days} days.",
        "Dear {name}, apologies for the damaged product in order {order}. A replacement is on its way and should arrive in {days} days.",
        "We're sorry the item in order {order} was broken, {name}. You'll receive a replacement in about {days} days.",
        "{name}, a replacement for the damaged article from order {order} has been dispatched; delivery in {days} days.",
        "Sorry about the damage, {name}. We shipped a new one for order {order}, arriving within {days} days.",
    ],
}

UPSELL = [
    "Hi {name}, before you go: upgrade to Premium today and save {amount}% on your first year, with free express shipping.",
    "{name}, did you know our Gold membership gives you {amount}% off every order? Join now and get a welcome gift.",
    "Exclusive for you, {name}: bundle two products and get {amount}% off, only for the next {days} days!",
    "{name}, customers like you love our new smart speaker. Order in the next {days} days and get {amount}% off.",
    "Don't miss out, {name}! Our summer sale ends in {days} days, with discounts up to {amount}% on bestsellers.",
    "{name}, refer a friend and you both get {amount} euros of store credit. Share your personal link today.",
]

NAMES = ("Anna", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jonas")
FILLINGS = 8
"""Texts generated per template."""


def _slots(rng: random.Random) -> dict[str, object]:
    return {
        "name": rng.choice(NAMES),
        "amount": rng.choice((12, 25, 40, 59, 80, 120, 199)),
        "order": f"A-{rng.randint(1000, 9999)}",
        "days": rng.choice((2, 3, 5, 7, 10)),
    }


def json_reply(intent: str, rng: random.Random) -> str:
    """A support answer as a JSON object (the format shift)."""
    slots = _slots(rng)
    return json.dumps(
        {
            "intent": intent,
            "customer": slots["name"],
            "order": slots["order"],
            "amount_eur": slots["amount"],
            "eta_days": slots["days"],
        }
    )


@dataclass(frozen=True)
class Corpus:
    """Every text of the tests: support answers by intent and template, and the two shifts."""

    support: dict[str, list[list[str]]]
    topic: list[str]
    format: list[str]

    def texts(self) -> list[str]:
        """Every distinct text, to embed once."""
        found = [t for templates in self.support.values() for texts in templates for t in texts]
        return list(dict.fromkeys([*found, *self.topic, *self.format]))

    def stable(self, rng: random.Random, n: int) -> list[str]:
        """``n`` support answers: an intent at random, then one of its paraphrases."""
        intents = sorted(self.support)
        return [rng.choice(rng.choice(self.support[rng.choice(intents)])) for _ in range(n)]

    def paraphrase_split(
        self, rng: random.Random, n_ref: int, n_cur: int
    ) -> tuple[list[str], list[str]]:
        """A reference and a current window saying the same things in different words.

        Each intent's templates are dealt in two halves: the reference uses one half, the
        current window only the other, so no current answer is worded as any reference one.
        """
        halves: dict[str, tuple[list[list[str]], list[list[str]]]] = {}
        for intent, templates in sorted(self.support.items()):
            order = list(range(len(templates)))
            rng.shuffle(order)
            half = len(order) // 2
            halves[intent] = (
                [templates[i] for i in order[:half]],
                [templates[i] for i in order[half:]],
            )
        intents = sorted(halves)
        reference = [rng.choice(rng.choice(halves[rng.choice(intents)][0])) for _ in range(n_ref)]
        current = [rng.choice(rng.choice(halves[rng.choice(intents)][1])) for _ in range(n_cur)]
        return reference, current


def corpus(seed: int = 7) -> Corpus:
    """The corpus of one seed."""
    rng = random.Random(seed)
    support = {
        intent: [[t.format(**_slots(rng)) for _ in range(FILLINGS)] for t in templates]
        for intent, templates in SUPPORT.items()
    }
    topic = [t.format(**_slots(rng)) for t in UPSELL for _ in range(FILLINGS)]
    formats = [json_reply(intent, rng) for intent in SUPPORT for _ in range(FILLINGS)]
    return Corpus(support, topic, formats)
