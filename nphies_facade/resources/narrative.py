"""Narrative XHTML (`text.div`) limited to what FHIR R4 allows, so no stored narrative can run script.

R4 (narrative.html, invariant txt-1): a `div` root in the XHTML namespace holding only the basic HTML 4.0
formatting elements (chapters 7-11 and 15, without the deprecated ones), `a` (name or href), images and
inline style attributes; no head or body, scripts, forms, base/link/xlink, frames, iframes, objects, event
attributes (`on*`) or external stylesheets; and some non-whitespace content (txt-2). The fragment is
parsed as XML (stdlib expat through ElementTree; a DOCTYPE, entity declaration or processing instruction
is refused before parsing), then every element and attribute is checked against allow-lists. URLs may be
relative, `#fragment`, http(s), mailto, tel or ftp; an image may also be `data:image/...`; CSS may not load
anything but image data (`url(data:image/...)`; no `@import`, `expression(`, escapes).
"""

import re
import xml.etree.ElementTree as ET

XHTML = "{http://www.w3.org/1999/xhtml}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
ELEMENTS = frozenset(
    "a abbr acronym address b bdo big blockquote br caption cite code col colgroup dd dfn div dl dt em "
    "h1 h2 h3 h4 h5 h6 hr i img kbd li map area ol p pre q samp small span strong sub sup table tbody "
    "td tfoot th thead tr tt ul var".split()
)
COMMON_ATTRIBUTES = frozenset(
    "id class style title lang dir accesskey tabindex "
    "span width align valign char charoff abbr axis headers scope rowspan colspan".split()
)
ELEMENT_ATTRIBUTES = {
    "a": frozenset("href name charset type hreflang rel rev shape coords".split()),
    "img": frozenset("src alt longdesc height width usemap ismap border".split()),
    "area": frozenset("shape coords href nohref alt".split()),
    "map": frozenset({"name"}),
    "blockquote": frozenset({"cite"}),
    "q": frozenset({"cite"}),
    "table": frozenset("summary width border frame rules cellspacing cellpadding".split()),
    "td": frozenset({"nowrap"}),
    "th": frozenset({"nowrap"}),
    "ol": frozenset({"start", "type"}),
    "li": frozenset({"value"}),
}
URL_ATTRIBUTES = frozenset({"href", "src", "longdesc", "cite", "usemap"})
LINK_SCHEME = re.compile(r"(?i)(https?|mailto|tel|ftp|urn):")
IMAGE_DATA = re.compile(r"(?i)data:\s*image/(png|gif|jpeg|jpg|webp|bmp);")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
UNSAFE_CSS = re.compile(r"(?i)@import|expression\s*\(|javascript:|behavior\s*:|-moz-binding|\\|/\*")
CSS_URL = re.compile(r"(?i)url\s*\(\s*['\"]?([^)'\"]*)")
FORBIDDEN_MARKUP = ("<!DOCTYPE", "<!ENTITY", "<?")


ALLOWED = {
    XHTML + name: COMMON_ATTRIBUTES | ELEMENT_ATTRIBUTES.get(name, frozenset()) | {XML_LANG}
    for name in ELEMENTS
}
XHTML_DIV = XHTML + "div"
XHTML_IMG = XHTML + "img"


def narrative_problem(div: str) -> str | None:
    """What makes the narrative not allowed by FHIR, or None when it is allowed."""
    if any(marker in div for marker in FORBIDDEN_MARKUP):
        return "The narrative may not hold a DOCTYPE, entity declarations or processing instructions"
    try:
        root = ET.fromstring(div)
    except ET.ParseError as exc:
        return f"The narrative is not well-formed XHTML: {exc}"
    if root.tag != XHTML_DIV:
        return "The narrative's root must be a div in the XHTML namespace (http://www.w3.org/1999/xhtml)"
    elements = list(root.iter())
    styles = []
    for element in elements:
        attributes = element.attrib
        allowed = ALLOWED.get(element.tag)
        if allowed is None:
            return _element_problem(element.tag)
        if not attributes:
            continue
        if not attributes.keys() <= allowed:
            return _attribute_problem(element.tag, set(attributes) - allowed)
        if "style" in attributes:
            styles.append(attributes["style"])
        for attribute in URL_ATTRIBUTES.intersection(attributes):
            value = attributes[attribute]
            if not _safe_url(value, image=element.tag == XHTML_IMG and attribute == "src"):
                return f"The URL in {_name(element.tag)}.{attribute} is not allowed in a FHIR narrative: {value[:80]!r}"
    if styles and not _safe_style("\n".join(styles)):
        return "A style in the narrative may load only image data, and use no CSS escapes or comments"
    if not "".join(root.itertext()).strip() and not any(e.tag == XHTML_IMG for e in elements):
        return "The narrative must have some non-whitespace content (txt-2)"
    return None


def _name(tag: str) -> str:
    return tag[len(XHTML) :] if tag.startswith(XHTML) else tag


def _element_problem(tag: object) -> str:
    if not isinstance(tag, str) or not tag.startswith(XHTML):
        return f"The narrative may hold only XHTML elements, not {tag!r}"
    return f"The element <{_name(tag)}> is not allowed in a FHIR narrative"


def _attribute_problem(tag: str, attributes: set[str]) -> str:
    listed = ", ".join(sorted(repr(a) for a in attributes))
    return f"The attribute {listed} of <{_name(tag)}> is not allowed in a FHIR narrative"


def _safe_style(style: str) -> bool:
    if UNSAFE_CSS.search(style):
        return False
    return all(IMAGE_DATA.match(url) or not SCHEME.match(url.strip()) for url in CSS_URL.findall(style))


def _safe_url(value: str, image: bool) -> bool:
    """Relative, a fragment, or a link scheme (and for an image, image data); never javascript: & co."""
    url = "".join(c for c in value if c > " ")  # browsers drop control characters and spaces in schemes
    if not SCHEME.match(url):
        return True
    if image and IMAGE_DATA.match(value.strip()):
        return True
    return LINK_SCHEME.match(url) is not None
