"""What each stream template adds to the stream's prompt, and which tests it suggests.

Guidance for the agent, not code generation: a template says what a stream of its kind
usually delivers and in what order, and where it usually goes wrong. The stream's own
`prompt` says what to build; its `owns` says where (the rails hold it to that).
build/prompt.py puts the guidance into an attempt's prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentloop.build.model import Template


@dataclass(frozen=True)
class TemplateGuide:
    delivers: str  # one line, for the plan
    guidance: str  # added to the stream's prompt
    tests_hint: str  # what its `tests` usually are, when the manifest gives none


TEMPLATES: dict[Template, TemplateGuide] = {
    "contracts": TemplateGuide(
        delivers="shared types, API schemas, error codes (first)",
        guidance=(
            "You write the contracts the other streams build against, before any of them "
            "starts: shared types, the API's request and response schemas, error codes. "
            "Write only declarations (types, schemas, constants), no behaviour. Make each "
            "one precise enough that two streams reading it separately agree: field names, "
            "types, optionality, status codes. On a merge conflict the contract wins, so "
            "what you write here is what everyone ends up with."
        ),
        tests_hint="a check that the contract files parse (types compile, schemas load)",
    ),
    "api-endpoint": TemplateGuide(
        delivers="backend route + frontend hook + end-to-end test",
        guidance=(
            "Build one API endpoint end to end: the backend route (validating its input "
            "against the contract's request schema, answering with the contract's response "
            "schema and error codes), the frontend hook or client function that calls it, "
            "and an end-to-end test that goes through both. Import the contract's types; "
            "never redefine them. If the contract is wrong, say so in your final message "
            "rather than working around it."
        ),
        tests_hint="the end-to-end test of the endpoint, and the backend route's unit tests",
    ),
    "ui-feature": TemplateGuide(
        delivers="component + page + visual test",
        guidance=(
            "Build one user-facing feature: the component (its props typed from the "
            "contract), the page or route that shows it, and a visual or DOM test of its "
            "states (loading, empty, error, filled). Take data through the hooks the "
            "api-endpoint streams provide, or mock them in tests with the contract's types; "
            "do not call the backend directly."
        ),
        tests_hint="the component's tests (DOM or visual) in the frontend suite",
    ),
    "data-model": TemplateGuide(
        delivers="schema migration + backend model + frontend types",
        guidance=(
            "Change the data model in one piece: the schema migration, the backend model "
            "that reads and writes it, and the frontend types that mirror it (matching the "
            "contract). Keep the migration reversible and additive where you can. "
            "agentloop forbids migration folders by default (rails.forbidden_paths: "
            "**/migrations/**, **/alembic/versions/**, **/db/migrate/**): if the stream "
            "must write one, the user has to allow it in agentloop.yaml first."
        ),
        tests_hint="the model's tests against a fresh database, and a migration up/down check",
    ),
    "custom": TemplateGuide(
        delivers="as the prompt says",
        guidance="",
        tests_hint="the repository's configured suites",
    ),
}
