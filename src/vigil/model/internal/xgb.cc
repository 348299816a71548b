#include "vigil/model/internal/xgb.h"

#include <cmath>
#include <string>

#include "vigil/model/meta.h"

namespace vigil::model::model_internal {

void Check(int rc, std::string_view what) {
  if (rc == 0) return;
  std::string message = "xgboost: ";
  message.append(what);
  message.append(": ");
  const char* last = XGBGetLastError();
  std::string_view text = last != nullptr ? last : "(no message)";
  // XGBoost appends a native stack trace; the first lines say what went wrong.
  if (size_t trace = text.find("\nStack trace:"); trace != std::string_view::npos) {
    text = text.substr(0, trace);
  }
  message.append(text);
  throw ModelError(message);
}

Booster LoadBooster(std::string_view json, int nthread) {
  BoosterHandle h = nullptr;
  Check(XGBoosterCreate(nullptr, 0, &h), "XGBoosterCreate");
  Booster booster(h);
  Check(XGBoosterLoadModelFromBuffer(h, json.data(), json.size()), "loading the model");
  const std::string threads = std::to_string(nthread);
  Check(XGBoosterSetParam(h, "nthread", threads.c_str()), "setting nthread");
  return booster;
}

std::string SaveBooster(BoosterHandle booster) {
  bst_ulong len = 0;
  const char* data = nullptr;
  Check(XGBoosterSaveModelToBuffer(booster, R"({"format": "json"})", &len, &data),
        "saving the model as JSON");
  return std::string(data, len);
}

DMatrix MakeDMatrix(const float* data, size_t rows, size_t cols, int nthread) {
  DMatrixHandle h = nullptr;
  Check(XGDMatrixCreateFromMat_omp(data, rows, cols, std::nanf(""), &h, nthread),
        "XGDMatrixCreateFromMat");
  return DMatrix(h);
}

std::string XgboostVersion() {
  int major = 0, minor = 0, patch = 0;
  XGBoostVersion(&major, &minor, &patch);
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

}  // namespace vigil::model::model_internal
