"""Reading images and labels: DICOM and other image files, CBIS-DDSM, labelled folders, the study index, masks, preprocessing, patient splits and the synthetic generator."""
