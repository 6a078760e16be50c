"""The names of the three grades, in the reader's language: the one place every page, banner and stamp
reads them from, so a file is never called by another grade's name (a grade-1 file headed
"confidential" teaches people to ignore the word on the files that are)."""

from __future__ import annotations

from flask_babel import gettext, pgettext

GRADES = (1, 2, 3)


def grade_name(grade: int) -> str:
    """The grade's name ("general", "important", "confidential"), translated now; a number outside the
    product's three grades is shown as it is rather than hiding that something is wrong."""
    # Written out (not looked up in a table of lazy strings) so that the extraction sees each msgid
    # with its context.
    if grade == 1:
        # Translators: the name of grade 1, the least protected files
        return pgettext("grade", "general")
    if grade == 2:
        # Translators: the name of grade 2, files lent with an approval
        return pgettext("grade", "important")
    if grade == 3:
        # Translators: the name of grade 3, files lent with an approval and a custodian's release
        return pgettext("grade", "confidential")
    return str(grade)


def grade_label(grade: int) -> str:
    """The heading of a file of this grade on the viewer's banner and on every stamped page: its name in
    capitals, then its number ("IMPORTANT — GRADE 2"). The stamp draws it as it is, so its words must
    stay these (a photo of a page names the grade it was shown under)."""
    # Translators: the viewer's banner and the stamp on every page, e.g. "IMPORTANT — GRADE 2";
    # name is the grade's name in capitals where the script has them
    return gettext("%(name)s — GRADE %(grade)d", name=grade_name(grade).upper(), grade=grade)



def grade_title(grade: int) -> str:
    """The grade's badge on the document and loan pages: its number and its name ("Grade 2 — important"), so a
    page names the grade as the upload form, the viewer's banner and the stamp do; the number alone left a
    reader to know what grade 2 means here."""
    # Translators: a file's grade badge on the document and loan pages, e.g. "Grade 2 — important"
    return gettext("Grade %(n)d — %(name)s", n=grade, name=grade_name(grade))
