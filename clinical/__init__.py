"""The cases app: intake by form, REST, FHIR and CDS Hooks, the case lifecycle, the
clinician's screens."""
