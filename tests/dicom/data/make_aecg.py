#!/usr/bin/env python3
"""Writes the sample HL7 aECG document tests/dicom/data/aecg_12lead.xml:
12 leads, 500 Hz, 5 s, integer digits from a deterministic synthetic beat.
Lead II is in mV (scale 0.005 mV), lead V1 has a non-zero origin; the
others are uV with origin 0. Run: python3 make_aecg.py > aecg_12lead.xml"""
import math

LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]
N = 2500


def beat(t, k):
    ph = (t % 0.8) / 0.8
    v = 30 * math.exp(-((ph - 0.15) / 0.03) ** 2)  # P
    v += (200 + 20 * k) * math.exp(-((ph - 0.3) / 0.01) ** 2)  # R
    v -= 40 * math.exp(-((ph - 0.33) / 0.01) ** 2)  # S
    v += 60 * math.exp(-((ph - 0.55) / 0.05) ** 2)  # T
    return int(round(v * (1 if k % 3 else -1)))


def seq(code, origin, scale, unit, digits):
    return f"""          <component>
            <sequence>
              <code code="{code}" codeSystem="2.16.840.1.113883.6.24" codeSystemName="MDC"/>
              <value xsi:type="SLIST_PQ">
                <origin value="{origin}" unit="{unit}"/>
                <scale value="{scale}" unit="{unit}"/>
                <digits>{' '.join(str(d) for d in digits)}</digits>
              </value>
            </sequence>
          </component>
"""


def ann(code, value, unit):
    return f"""          <component>
            <annotation>
              <code code="{code}" codeSystem="2.16.840.1.113883.6.24"/>
              <value xsi:type="PQ" value="{value}" unit="{unit}"/>
            </annotation>
          </component>
"""


out = ["""<?xml version="1.0" encoding="UTF-8"?>
<AnnotatedECG xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <id root="2.16.840.1.113883.3.1234.7" extension="TWN-CART-0001"/>
  <code code="93000" codeSystem="2.16.840.1.113883.6.12"/>
  <effectiveTime>
    <low value="20261203083015"/>
    <high value="20261203083020"/>
  </effectiveTime>
  <componentOf>
    <timepointEvent>
      <componentOf>
        <subjectAssignment>
          <subject>
            <trialSubject>
              <id root="2.16.840.1.113883.3.1234.1" extension="P-000123"/>
              <subjectDemographicPerson>
                <name><family>张</family><given>三</given></name>
                <administrativeGenderCode code="M" codeSystem="2.16.840.1.113883.5.1"/>
                <birthTime value="19580214"/>
              </subjectDemographicPerson>
            </trialSubject>
          </subject>
        </subjectAssignment>
      </componentOf>
    </timepointEvent>
  </componentOf>
  <component>
    <series>
      <code code="RHYTHM" codeSystem="2.16.840.1.113883.5.4"/>
      <effectiveTime><low value="20261203083015"/><high value="20261203083020"/></effectiveTime>
      <component>
        <sequenceSet>
          <component>
            <sequence>
              <code code="TIME_ABSOLUTE" codeSystem="2.16.840.1.113883.5.4"/>
              <value xsi:type="GLIST_TS">
                <head value="20261203083015.000"/>
                <increment value="0.002" unit="s"/>
              </value>
            </sequence>
          </component>
"""]
for k, lead in enumerate(LEADS):
    digits = [beat(i / 500.0, k) for i in range(N)]
    if lead == "II":
        out.append(seq("MDC_ECG_LEAD_II", "0", "0.005", "mV", digits))
    elif lead == "V1":
        out.append(seq("MDC_ECG_LEAD_V1", "10", "5", "uV", digits))
    else:
        out.append(seq("MDC_ECG_LEAD_" + lead, "0", "5", "uV", digits))
out.append("""        </sequenceSet>
      </component>
      <subjectOf>
        <annotationSet>
""")
out.append(ann("MDC_ECG_HEART_RATE", "75", "bpm"))
out.append(ann("MDC_ECG_TIME_PD_PR", "156", "ms"))
out.append(ann("MDC_ECG_TIME_PD_QRS", "92", "ms"))
out.append(ann("MDC_ECG_TIME_PD_QT", "380", "ms"))
out.append(ann("MDC_ECG_TIME_PD_QTc", "412", "ms"))
out.append(ann("MDC_ECG_ANGLE_QRS_FRONT", "45", "deg"))
out.append("""          <component>
            <annotation>
              <code code="MDC_ECG_INTERPRETATION" codeSystem="2.16.840.1.113883.6.24"/>
              <component>
                <annotation>
                  <code code="MDC_ECG_INTERPRETATION_STATEMENT" codeSystem="2.16.840.1.113883.6.24"/>
                  <value xsi:type="ST">Sinus rhythm</value>
                </annotation>
              </component>
              <component>
                <annotation>
                  <code code="MDC_ECG_INTERPRETATION_STATEMENT" codeSystem="2.16.840.1.113883.6.24"/>
                  <value xsi:type="ST">窦性心律 Normal ECG</value>
                </annotation>
              </component>
            </annotation>
          </component>
        </annotationSet>
      </subjectOf>
    </series>
  </component>
</AnnotatedECG>
""")
print("".join(out), end="")
