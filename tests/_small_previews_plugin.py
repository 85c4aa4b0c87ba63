"""A batch plugin (``--import`` of every worker that _batch_driver.py starts): the jobs' reports get
the small previews of _previews.py. Imported only by that driver and its workers, never by the
test process, whose report tests need the default previews."""

from _previews import small_make_previews

html, _make_previews = small_make_previews()
html.make_previews = _make_previews
