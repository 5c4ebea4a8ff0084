#!/usr/bin/python3
"""Writes small Part 10 objects of Storage SOP classes huren once refused, for
test_sop_classes.sh (run with Debian's /usr/bin/python3, which has pydicom).
Usage: sop_objects.py OUT_DIR PATIENT_ID. One file per class, named after it;
prints "file study series sop sop_class" per object."""
import os
import sys

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CLASSES = [
    ('kos', '1.2.840.10008.5.1.4.1.1.88.59', 'KO'),
    ('gsps', '1.2.840.10008.5.1.4.1.1.11.1', 'PR'),
    ('seg', '1.2.840.10008.5.1.4.1.1.66.4', 'SEG'),
    ('enhct', '1.2.840.10008.5.1.4.1.1.2.1', 'CT'),
    ('rtplan', '1.2.840.10008.5.1.4.1.1.481.5', 'RTPLAN'),
    ('bto', '1.2.840.10008.5.1.4.1.1.13.1.3', 'MG'),
    ('private', '1.2.826.0.1.3680043.9999.1', 'OT'),
]


def image(ds, frames, bits):
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = 'MONOCHROME2'
    ds.Rows = 8
    ds.Columns = 8
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    n = 8 * 8 * frames * bits // 8
    ds.PixelData = bytes((i * 7) & 0xFF for i in range(n + (n & 1)))


def main():
    out, pid = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    study = generate_uid()
    for i, (name, cls, modality) in enumerate(CLASSES):
        ds = Dataset()
        ds.SpecificCharacterSet = 'ISO_IR 192'
        ds.SOPClassUID = cls
        ds.SOPInstanceUID = generate_uid()
        ds.StudyDate = '20250102'
        ds.ContentDate = '20250102'
        ds.Modality = modality
        ds.PatientName = 'Sop^Classes'
        ds.PatientID = pid
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = generate_uid()
        ds.SeriesNumber = i + 1
        ds.InstanceNumber = 1
        if name == 'seg':
            image(ds, 2, 8)
            ds.SegmentationType = 'BINARY'
        elif name in ('enhct', 'bto'):
            image(ds, 3, 16)
        elif name == 'kos':
            item = Dataset()
            item.ReferencedSOPSequence = Sequence()
            ds.CurrentRequestedProcedureEvidenceSequence = Sequence([item])
        elif name == 'rtplan':
            ds.RTPlanLabel = 'PLAN1'
        fm = FileMetaDataset()
        fm.MediaStorageSOPClassUID = cls
        fm.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        fm.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = fm
        ds.is_little_endian = True
        ds.is_implicit_VR = False
        path = os.path.join(out, name + '.dcm')
        ds.save_as(path, write_like_original=False)
        print(path, study, ds.SeriesInstanceUID, ds.SOPInstanceUID, cls)


if __name__ == '__main__':
    main()
