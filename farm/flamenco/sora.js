// SPDX-License-Identifier: GPL-3.0-or-later
//
// Flamenco job type "Sora Shots": one task per shot, each running `sora run SPEC.json`.
//
// Install: copy this file into the `scripts/` folder next to the Flamenco Manager executable
// and restart the Manager (or use the Manager's job-type reload). Every Worker that takes
// these tasks needs `sora` (pip install 'sora-core[worker]') and the models on its disk.
//
// The job's `shots` setting is the JSON plan `sora farm SPECS --plan` prints:
//   {"output_root": "/mnt/shots", "shots": [{"id": "a", "spec": "/mnt/specs/a.json",
//                                             "depends_on": []}, ...]}
// (a plain list of such shots works too). Dependencies (an extend of a generated shot) become
// task dependencies, so Flamenco starts a shot only when the shots it reads have finished.
// With the `export` setting, each task then runs `sora export` of its shot per format (signed
// with the Worker's SORA_SIGN_CERT/SORA_SIGN_KEY; exit 65 when the shot fails verification).
// Exit codes of `sora run`: 0 done, 2 invalid input, 3 not found, 75 retry may help
// (out of memory, device busy, worker died), 130 cancelled, 1 other. Flamenco treats every
// non-zero exit as a failed task; requeueing it resumes the shot after its last finished pass.

const JOB_TYPE = {
    label: "Sora Shots",
    description: "Generate sora shots (linear EXR sequences), one task per shot spec",
    settings: [
        { key: "shots", type: "string", required: true,
          description: "JSON plan from `sora farm SPECS --plan`: output_root and shots {id, spec, depends_on}" },
        { key: "output_root", type: "string", subtype: "dir_path", required: false, default: "",
          description: "Folder every shot writes inside; empty: the plan's output_root" },
        { key: "sora", type: "string", required: true, default: "sora",
          description: "The sora command on the Workers (a path, or a name on PATH)" },
        { key: "models_dir", type: "string", subtype: "dir_path", required: false, default: "",
          description: "Extra models folder on the Workers (--models-dir)" },
        { key: "extra_args", type: "string", required: false, default: "",
          description: "More arguments for `sora run`, separated by spaces" },
        { key: "export", type: "string", required: false, default: "",
          description: "Deliverables after each shot (sora export): formats separated by spaces, of mp4 mov png jpeg; empty: none" },
        { key: "export_dir", type: "string", subtype: "dir_path", required: false, default: "",
          description: "Where deliverables go, as <shot id>.mp4 (a folder <shot id>_png for a sequence); empty: <output root>/deliverables" },
        { key: "task_type", type: "string", required: true, default: "misc",
          description: "Flamenco task type; Workers must list it (e.g. a 'sora' type for GPU Workers only)" },
    ],
};

function compileJob(job) {
    const settings = job.settings;
    const plan = parsePlan(settings.shots);
    const root = settings.output_root || plan.output_root;
    if (!root) {
        throw "Sora Shots: no output root: set output_root or give a plan that has one";
    }
    const shots = plan.shots;
    const byId = {};
    for (const shot of shots) {
        if (!shot.id || !shot.spec) {
            throw "Sora Shots: every shot needs an id and a spec path: " + JSON.stringify(shot);
        }
        if (byId[shot.id]) {
            throw "Sora Shots: shot id used twice: " + shot.id;
        }
        byId[shot.id] = shot;
    }

    const extra = (settings.extra_args || "").split(" ").filter(function (a) { return a.length > 0; });
    const formats = (settings.export || "").split(" ").filter(function (a) { return a.length > 0; });
    for (const fmt of formats) {
        if (!(fmt in DELIVERABLE)) {
            throw "Sora Shots: export format " + fmt + " is not one of " + Object.keys(DELIVERABLE).join(", ");
        }
    }
    const exportDir = settings.export_dir || root.replace(/\/+$/, "") + "/deliverables";
    const tasks = {};
    for (const shot of orderShots(shots, byId)) {
        const args = ["run", shot.spec, "--output-root", root];
        if (settings.models_dir) {
            args.push("--models-dir", settings.models_dir);
        }
        const task = author.Task("sora-" + shot.id, settings.task_type || "misc");
        task.addCommand(author.Command("exec", {
            exe: settings.sora || "sora",
            args: args.concat(extra),
        }));
        for (const fmt of formats) {           // the node that made the shot signs its deliverable
            task.addCommand(author.Command("exec", {
                exe: settings.sora || "sora",
                args: ["export", shotDir(shot, plan, root), "--format", fmt,
                       "--out", exportDir + "/" + shot.id + DELIVERABLE[fmt]],
            }));
        }
        for (const dep of shot.depends_on || []) {
            task.addDependency(tasks[dep]);
        }
        tasks[shot.id] = task;
        job.addTask(task);
    }
}

// What `sora export --out` gets: a file for video, a new folder for a still sequence.
const DELIVERABLE = { mp4: ".mp4", mov: ".mov", png: "_png", jpeg: "_jpeg" };

// The shot's folder: the plan's out_dir, moved under the output_root setting when it overrides the plan's.
function shotDir(shot, plan, root) {
    if (!shot.out_dir) {
        throw "Sora Shots: export needs each shot's out_dir (a plan from `sora farm --plan`): " + shot.id;
    }
    const planRoot = (plan.output_root || "").replace(/\/+$/, "");
    if (planRoot && shot.out_dir.startsWith(planRoot + "/")) {
        return root.replace(/\/+$/, "") + shot.out_dir.slice(planRoot.length);
    }
    return shot.out_dir;
}

function parsePlan(text) {
    let plan;
    try {
        plan = JSON.parse(text);
    } catch (e) {
        throw "Sora Shots: the shots setting is not valid JSON: " + e;
    }
    if (Array.isArray(plan)) {
        plan = { shots: plan };
    }
    if (!plan || !Array.isArray(plan.shots) || plan.shots.length === 0) {
        throw "Sora Shots: the plan has no shots";
    }
    return plan;
}

// Dependencies first (a task can only depend on a task already made); a cycle is an error.
function orderShots(shots, byId) {
    const out = [];
    const state = {};
    function visit(shot, trail) {
        if (state[shot.id] === 2) return;
        if (state[shot.id] === 1) {
            throw "Sora Shots: dependency cycle: " + trail.concat([shot.id]).join(" -> ");
        }
        state[shot.id] = 1;
        for (const dep of shot.depends_on || []) {
            if (!byId[dep]) {
                throw "Sora Shots: shot " + shot.id + " depends on unknown shot " + dep;
            }
            visit(byId[dep], trail.concat([shot.id]));
        }
        state[shot.id] = 2;
        out.push(shot);
    }
    for (const shot of shots) visit(shot, []);
    return out;
}
