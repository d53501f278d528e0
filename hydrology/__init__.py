"""rivertrace science: river network, hydraulics, dispersion, transport, oxygen and standards.

Pure Python science (numpy, scipy, xarray, networkx); never imports gRPC or protobuf. Everything
inside is SI: m, s, m3/s, g/m3 (= mg/L), kg, rates in 1/s.
"""
