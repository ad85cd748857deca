"""The pages of the built-in authorization server (login, patient picker, consent, errors), in Arabic and
English: jinja2 templates with autoescaping, a style sheet and no script, served under a strict CSP."""

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from .scopes import ScopeError, parse_scope

HERE = Path(__file__).parent
STYLE_SHEET = HERE / "static" / "auth.css"
LANGUAGES = ("en", "ar")

TEXT = {
    "en": {
        "title": "nphies-facade",
        "other_language": "العربية",
        "login_title": "Sign in",
        "app_wants": "{app} asks to use your health records.",
        "username": "Login name",
        "password": "Password",
        "sign_in": "Sign in",
        "login_failed": "Wrong login name or password, or the account is locked or disabled.",
        "picker_title": "Choose a patient",
        "search": "Search by name",
        "search_button": "Search",
        "choose": "Continue",
        "no_patients": "No patient you may see matches.",
        "patient_refused": "You may not open this patient's record.",
        "consent_title": "Allow access?",
        "consent_intro": "{app} asks for these permissions. Untick any you do not want to grant.",
        "patient_context": "Patient",
        "allow": "Allow",
        "deny": "Deny",
        "error_title": "The request cannot be completed",
        "session_expired": "This sign-in page has expired or was opened elsewhere. Start again from the app.",
        "bad_request": "The app's request is not valid.",
        "forbidden_form": "The form was not sent by this sign-in page. Start again from the app.",
        "scope.openid": "Know who you are",
        "scope.fhirUser": "Know which record describes you",
        "scope.profile": "Know who you are",
        "scope.launch": "Open in the context your record system chose",
        "scope.launch/patient": "Know which patient is chosen",
        "scope.launch/encounter": "Know which encounter is chosen",
        "scope.offline_access": "Keep access after you sign out",
        "scope.online_access": "Keep access while you are signed in",
        "context.patient": "of the chosen patient",
        "context.user": "that you may see",
        "context.system": "on the whole server",
        "letter.c": "create",
        "letter.r": "read",
        "letter.u": "update",
        "letter.d": "delete",
        "letter.s": "search",
        "all_types": "all records",
    },
    "ar": {
        "title": "nphies-facade",
        "other_language": "English",
        "login_title": "تسجيل الدخول",
        "app_wants": "يطلب {app} استخدام سجلاتك الصحية.",
        "username": "اسم المستخدم",
        "password": "كلمة المرور",
        "sign_in": "دخول",
        "login_failed": "اسم المستخدم أو كلمة المرور غير صحيحة، أو أن الحساب مقفل أو معطل.",
        "picker_title": "اختر مريضًا",
        "search": "البحث بالاسم",
        "search_button": "بحث",
        "choose": "متابعة",
        "no_patients": "لا يوجد مريض يحق لك رؤيته يطابق البحث.",
        "patient_refused": "لا يحق لك فتح سجل هذا المريض.",
        "consent_title": "السماح بالوصول؟",
        "consent_intro": "يطلب {app} هذه الأذونات. أزل العلامة عن أي إذن لا تريد منحه.",
        "patient_context": "المريض",
        "allow": "سماح",
        "deny": "رفض",
        "error_title": "تعذر إكمال الطلب",
        "session_expired": "انتهت صلاحية صفحة الدخول هذه أو فُتحت في مكان آخر. ابدأ من جديد من التطبيق.",
        "bad_request": "طلب التطبيق غير صالح.",
        "forbidden_form": "لم يُرسل النموذج من صفحة الدخول هذه. ابدأ من جديد من التطبيق.",
        "scope.openid": "معرفة هويتك",
        "scope.fhirUser": "معرفة السجل الذي يصفك",
        "scope.profile": "معرفة هويتك",
        "scope.launch": "الفتح في السياق الذي اختاره نظام السجلات",
        "scope.launch/patient": "معرفة المريض المختار",
        "scope.launch/encounter": "معرفة الزيارة المختارة",
        "scope.offline_access": "الاحتفاظ بالوصول بعد خروجك",
        "scope.online_access": "الاحتفاظ بالوصول أثناء دخولك",
        "context.patient": "للمريض المختار",
        "context.user": "التي يحق لك رؤيتها",
        "context.system": "على الخادم كله",
        "letter.c": "إنشاء",
        "letter.r": "قراءة",
        "letter.u": "تعديل",
        "letter.d": "حذف",
        "letter.s": "بحث",
        "all_types": "كل السجلات",
    },
}

_environment = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,
)


def choose_language(*preferences: str | None) -> str:
    """The first of ar/en named by the preferences in order (an explicit choice, `ui_locales`,
    Accept-Language), English when none names either."""
    for preference in preferences:
        for part in (preference or "").replace(",", " ").split():
            code = part.split(";", 1)[0].split("-", 1)[0].strip().lower()
            if code in LANGUAGES:
                return code
    return "en"


def describe_scope(text: str, lang: str) -> str:
    t = TEXT[lang]
    if f"scope.{text}" in t:
        return t[f"scope.{text}"]
    try:
        scope = parse_scope(text)
    except ScopeError:
        scope = None
    if scope is None:
        return text
    letters = [t[f"letter.{letter}"] for letter in "cruds" if letter in scope.permissions]
    what = t["all_types"] if scope.resource_type == "*" else scope.resource_type
    return f"{', '.join(letters)}: {what} {t[f'context.{scope.context}']}"


def content_security_policy(form_targets: tuple[str, ...] = ()) -> str:
    """No script at all; styles from this server; forms post here (and redirect on to the app)."""
    targets = " ".join(("'self'", *form_targets))
    return (
        "default-src 'none'; style-src 'self'; img-src 'self'; "
        f"form-action {targets}; frame-ancestors 'none'; base-uri 'none'"
    )


def render(
    template: str,
    lang: str,
    title_key: str,
    *,
    status: int = 200,
    form_targets: tuple[str, ...] = (),
    toggle: str | None = None,
    **values: object,
) -> HTMLResponse:
    other = "ar" if lang == "en" else "en"
    html = _environment.get_template(template).render(
        lang=lang,
        t=TEXT[lang],
        title_key=title_key,
        other_lang=other,
        toggle=f"{toggle}{'&' if '?' in toggle else '?'}lang={other}" if toggle else None,
        **values,
    )
    headers = {
        "Content-Security-Policy": content_security_policy(form_targets),
        "Cache-Control": "no-store",
        "Content-Language": lang,
    }
    return HTMLResponse(html, status, headers)
