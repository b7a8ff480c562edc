"""The hospital's PACS: our own DICOM node that receives studies, and query and retrieve from a site's archive."""
