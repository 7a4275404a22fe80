"""The clinician's screens: enter a case, watch it run, read the answer, review it.

Views stay thin (``views.py``); turning posted form fields into the API's JSON shape and
pydantic errors back into field messages lives in ``case_form.py`` and ``review_form.py``,
so the form is validated by exactly the models the REST API uses.
"""
