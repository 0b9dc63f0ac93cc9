// RCUMaps: the library product. It re-exports the layers below it so that
// `import RCUMaps` is all a user needs.
@_exported import RCUEpoch
@_exported import RCUBaseMaps
@_exported import RCUMapProviders
