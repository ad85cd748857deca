"""What a FHIR operation does, declared as data next to its definition: the interactions it causes
(`read Claim`, `create Task` ...) and whether it is administration.

An operation runs only when the caller may perform every one of its interactions (FhirService
`authorize_operation` asks the same scope and ABAC rules as for the plain interactions, before anything
is read, written or sent); administration also needs the administrative role and scope. The
CapabilityStatement and the table in docs/security.md are generated from these declarations.
"""

from dataclasses import dataclass, field

from .access import Interaction

NEEDS_EXTENSION = "urn:nphies-facade:extension:operation-needs"
ADMINISTRATION_TEXT = "administration: the `admin` role and the `system/*.*` scope"

VERBS: dict[str, Interaction] = {
    "read": Interaction.READ,
    "search": Interaction.SEARCH,
    "create": Interaction.CREATE,
    "update": Interaction.UPDATE,
    "delete": Interaction.DELETE,
}


@dataclass(frozen=True, slots=True)
class Need:
    """One interaction an operation causes: `verb` (read, search, create, update, delete) on a type."""

    verb: str
    resource_type: str

    @property
    def interaction(self) -> Interaction:
        return VERBS[self.verb]

    @property
    def text(self) -> str:
        return f"{self.verb} {self.resource_type}"


def parse_need(text: str) -> Need:
    verb, _, resource_type = text.partition(" ")
    if verb not in VERBS or not resource_type[:1].isupper():
        raise ValueError(f"an operation need is '<{'|'.join(VERBS)}> <Type>', not {text!r}")
    return Need(verb, resource_type)


@dataclass(frozen=True)
class OperationDeclaration:
    """`resource_type` is where the operation is invoked (None: at the server base); `instance` whether
    on one resource (`Claim/1/$submit`). `needs` are texts such as "create Task"."""

    name: str
    resource_type: str | None
    definition: str
    documentation: str
    needs: tuple[str, ...] = ()
    admin: bool = False
    instance: bool = True
    parsed: tuple[Need, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parsed", tuple(parse_need(text) for text in self.needs))

    @property
    def invocation(self) -> str:
        if self.resource_type is None:
            return f"[base]/${self.name}"
        return f"{self.resource_type}/{'[id]/' if self.instance else ''}${self.name}"

    def requirement(self) -> str:
        """What the caller needs, in words (the CapabilityStatement's documentation and the docs table)."""
        parts = [need.text for need in self.parsed]
        if self.admin:
            parts.insert(0, ADMINISTRATION_TEXT)
        return ", ".join(parts)

    def capability(self) -> dict:
        """The CapabilityStatement `operation` entry: the requirement in words and as extensions."""
        entry = {
            "name": self.name,
            "definition": self.definition,
            "documentation": f"{self.documentation}. Needs: {self.requirement()}",
        }
        extension = [{"url": NEEDS_EXTENSION, "valueString": need.text} for need in self.parsed]
        if self.admin:
            extension.insert(0, {"url": NEEDS_EXTENSION, "valueString": "administration"})
        if extension:
            entry["extension"] = extension
        return entry


def requirements_table(declarations: list[OperationDeclaration]) -> str:
    """The Markdown table of docs/security.md (a test keeps the page equal to it)."""
    lines = ["| operation | needs |", "|---|---|"]
    for declaration in declarations:
        lines.append(f"| `{declaration.invocation}` | {declaration.requirement()} |")
    return "\n".join(lines) + "\n"
