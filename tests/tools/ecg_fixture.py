#!/usr/bin/python3
"""ECG waveform fixtures and reference values, with pydicom (the independent
reader the tests compare huren's decoder against).

  ecg_fixture.py gen OUT.dcm [--implicit] [--lie samples|channels] [--procedure TEXT]
                 [--patient-id ID]
                 [--study UID] [--instance UID] [--hospital-name NAME]
      writes a synthetic 12-lead ECG (12-lead ECG Waveform Storage): group 1
      "RHYTHM" 500 Hz 10 s, 16-bit SS, MDC lead codes, uV with sensitivity
      2.5, correction 0.98, baseline 4; group 2 "MEDIAN BEAT" 500 Hz 1.2 s,
      8-bit SB, SCPECG codes, mV with sensitivity 0.02 (so 20 uV a step);
      numeric measurements and interpretation statements (one in Chinese).
      --lie samples declares 5001 samples in group 1 for the data of 5000,
      --lie channels 13 channels in group 2 for 12 definitions (valid DICOM
      objects whose waveform cannot be decoded).
  ecg_fixture.py dump FILE
      prints JSON: per group label, sampling frequency, samples, and per
      channel the lead code and the values of pydicom's waveform_array()
      converted to uV and rounded to 0.1; measurements; interpretation.
"""
import json
import math
import sys

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
TERMS = [1, 2, 61, 62, 63, 64, 3, 4, 5, 6, 7, 8]
UV = {"uV": 1.0, "mV": 1000.0, "V": 1e6, "nV": 1e-3}


def code(value, scheme, meaning):
    c = Dataset()
    c.CodeValue = value
    c.CodingSchemeDesignator = scheme
    c.CodeMeaning = meaning
    return c


def beat_mv(t):
    """One synthetic beat (mV) of lead II at time t in s within an 0.8 s cycle."""
    g = lambda mu, sd, a: a * math.exp(-((t - mu) ** 2) / (2 * sd * sd))
    return (g(0.20, 0.025, 0.15) + g(0.33, 0.008, -0.10) + g(0.35, 0.010, 1.20)
            + g(0.37, 0.008, -0.25) + g(0.58, 0.040, 0.30))


def limb_leads(t):
    ii = beat_mv(t % 0.8)
    i = 0.55 * beat_mv((t + 0.004) % 0.8)
    iii = ii - i
    return [i, ii, iii, -(i + ii) / 2, i - ii / 2, ii - i / 2]


def chest(t, k):
    base = beat_mv((t + 0.002 * k) % 0.8)
    return base * [-0.6, -0.3, 0.4, 1.1, 1.3, 1.0][k]


def group(label, fs, n, bits, scheme, units, sens, corr, baseline, seconds0=0.0):
    g = Dataset()
    g.MultiplexGroupTimeOffset = "0.0"
    g.WaveformOriginality = "ORIGINAL"
    g.NumberOfWaveformChannels = 12
    g.NumberOfWaveformSamples = n
    g.SamplingFrequency = str(fs)
    g.MultiplexGroupLabel = label
    defs = []
    for k, lead in enumerate(LEADS):
        d = Dataset()
        d.ChannelSourceSequence = Sequence([
            code("2:%d" % TERMS[k], "MDC", "Lead " + lead) if scheme == "MDC"
            else code("5.6.3-9-%d" % TERMS[k], "SCPECG", "Lead " + lead)])
        d.ChannelSensitivity = str(sens)
        d.ChannelSensitivityUnitsSequence = Sequence([code(units, "UCUM", units)])
        d.ChannelSensitivityCorrectionFactor = str(corr)
        d.ChannelBaseline = str(baseline)
        d.WaveformBitsStored = bits
        defs.append(d)
    g.ChannelDefinitionSequence = Sequence(defs)
    g.WaveformBitsAllocated = bits
    g.WaveformSampleInterpretation = "SS" if bits == 16 else "SB"
    step_uv = sens * corr * UV[units]
    arr = np.zeros((n, 12), dtype=np.int16 if bits == 16 else np.int8)
    lim = 32767 if bits == 16 else 127
    for s in range(n):
        t = seconds0 + s / fs
        vals = limb_leads(t) + [chest(t, k) for k in range(6)]
        for k, mv in enumerate(vals):
            raw = round(mv * 1000.0 / step_uv - baseline)
            arr[s, k] = max(-lim, min(lim, raw))
    g.WaveformData = arr.tobytes()
    return g


def gen(path, implicit, procedure, patient_id, study, instance, name, lie=None):
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.9.1.1"
    ds.SOPInstanceUID = instance or generate_uid()
    ds.StudyDate = "20261203"
    ds.StudyTime = "101500"
    ds.AcquisitionDateTime = "20261203101512.000"
    ds.ContentDate = "20261203"
    ds.ContentTime = "101512"
    ds.Modality = "ECG"
    ds.Manufacturer = "huren test"
    ds.InstitutionName = name
    ds.PatientName = "Wang^Fang=王^芳"
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19580412"
    ds.PatientSex = "F"
    ds.StudyInstanceUID = study or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.AccessionNumber = "ECG" + ds.SOPInstanceUID[-8:]
    ds.StudyDescription = procedure  # what routing reads as the procedure
    ds.RequestedProcedureDescription = procedure
    ds.WaveformSequence = Sequence([
        group("RHYTHM", 500, 5000, 16, "MDC", "uV", 2.5, 0.98, 4),
        group("MEDIAN BEAT", 500, 600, 8, "SCPECG", "mV", 0.02, 1.0, 0, 0.0)])
    if lie == "samples":
        ds.WaveformSequence[0].NumberOfWaveformSamples = 5001
    elif lie == "channels":
        ds.WaveformSequence[1].NumberOfWaveformChannels = 13
    ann = []
    for value, meaning, number, unit in [("8867-4", "Heart rate", 75, "/min"),
                                         ("5.10.2.5-5", "QTc Interval", 412, "ms"),
                                         ("5.13.5-7", "PR Interval", 160, "ms"),
                                         ("5.13.5-9", "QRS Duration", 92, "ms")]:
        a = Dataset()
        a.ConceptNameCodeSequence = Sequence([code(value, "SCPECG" if "." in value else "LN",
                                                   meaning)])
        a.NumericValue = str(number)
        a.MeasurementUnitsCodeSequence = Sequence([code(unit, "UCUM", unit)])
        a.ReferencedWaveformChannels = [1, 0]
        a.AnnotationGroupNumber = 1
        ann.append(a)
    for text in ["Sinus rhythm", "窦性心律 正常心电图"]:
        a = Dataset()
        a.UnformattedTextValue = text
        a.ReferencedWaveformChannels = [1, 0]
        a.AnnotationGroupNumber = 0
        ann.append(a)
    ds.WaveformAnnotationSequence = Sequence(ann)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.is_little_endian = True
    ds.is_implicit_VR = implicit
    ds.preamble = b"\0" * 128
    ds.save_as(path, write_like_original=False)


def dump(path):
    ds = pydicom.dcmread(path)
    out = {"instance": ds.SOPInstanceUID, "groups": [], "measurements": [],
           "interpretation": []}
    for gi, g in enumerate(ds.WaveformSequence):
        arr = ds.waveform_array(gi)
        chans = []
        for k, d in enumerate(g.ChannelDefinitionSequence):
            src = d.ChannelSourceSequence[0] if "ChannelSourceSequence" in d else None
            unit = d.ChannelSensitivityUnitsSequence[0].CodeValue
            f = UV.get(unit, 1.0)
            chans.append({"code": src.CodeValue if src else "",
                          "scheme": src.CodingSchemeDesignator if src else "",
                          "data": [round(float(v) * f, 1) for v in arr[:, k]]})
        out["groups"].append({"label": g.get("MultiplexGroupLabel", ""),
                              "sampling_frequency": float(g.SamplingFrequency),
                              "samples": int(g.NumberOfWaveformSamples), "channels": chans})
    for a in ds.get("WaveformAnnotationSequence", []):
        if "NumericValue" in a:
            out["measurements"].append({"name": a.ConceptNameCodeSequence[0].CodeMeaning,
                                        "value": float(a.NumericValue),
                                        "unit": a.MeasurementUnitsCodeSequence[0].CodeValue})
        elif "UnformattedTextValue" in a:
            out["interpretation"].append(str(a.UnformattedTextValue))
    json.dump(out, sys.stdout, ensure_ascii=False)


def main(argv):
    if len(argv) >= 3 and argv[1] == "gen":
        opts = {"--procedure": "12导联心电图", "--patient-id": "ECG-P1", "--study": None,
                "--instance": None, "--hospital-name": "Township A"}
        implicit = False
        lie = None
        i = 3
        while i < len(argv):
            if argv[i] == "--implicit":
                implicit = True
                i += 1
            elif argv[i] == "--lie" and i + 1 < len(argv) and argv[i + 1] in ("samples", "channels"):
                lie = argv[i + 1]
                i += 2
            elif argv[i] in opts and i + 1 < len(argv):
                opts[argv[i]] = argv[i + 1]
                i += 2
            else:
                sys.exit("unknown option " + argv[i])
        gen(argv[2], implicit, opts["--procedure"], opts["--patient-id"], opts["--study"],
            opts["--instance"], opts["--hospital-name"], lie)
    elif len(argv) == 3 and argv[1] == "dump":
        dump(argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
