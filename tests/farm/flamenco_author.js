// A stand-in for Flamenco's job-compiler API (`author`, a job), recording what compileJob builds.
// usage: node flamenco_author.js JOB_SCRIPT SETTINGS_JSON  -> prints {job_type, tasks} or {error}
"use strict";
const fs = require("fs");
const vm = require("vm");

const [, , scriptPath, settingsJson] = process.argv;
const tasks = [];

class Command {
    constructor(name, params) {
        if (typeof name !== "string") throw new Error("command name must be a string");
        this.name = name;
        this.parameters = params;
    }
}

class Task {
    constructor(name, type) {
        if (typeof name !== "string" || typeof type !== "string") throw new Error("Task(name, type) takes strings");
        this.name = name;
        this.type = type;
        this.commands = [];
        this.dependencies = [];
    }
    addCommand(cmd) {
        if (!(cmd instanceof Command)) throw new Error("addCommand wants an author.Command");
        this.commands.push(cmd);
    }
    addDependency(task) {
        if (!(task instanceof Task)) throw new Error("addDependency wants a Task, got " + task);
        if (!tasks.includes(task)) throw new Error("dependency " + task.name + " is not added to the job yet");
        this.dependencies.push(task);
    }
}

const author = {
    Task: (name, type) => new Task(name, type),
    Command: (name, params) => new Command(name, params),
};
const job = {
    settings: JSON.parse(settingsJson),
    metadata: {},
    addTask(task) {
        if (!(task instanceof Task)) throw new Error("addTask wants a Task");
        tasks.push(task);
    },
};

const context = vm.createContext({ author, print: console.log, JSON });
try {
    vm.runInContext(fs.readFileSync(scriptPath, "utf8") + "\n;this.JOB_TYPE = JOB_TYPE;", context,
                    { filename: scriptPath });
    context.compileJob(job);
} catch (e) {
    console.log(JSON.stringify({ error: String(e && e.message ? e.message : e) }));
    process.exit(0);
}
console.log(JSON.stringify({
    job_type: context.JOB_TYPE,
    tasks: tasks.map(t => ({
        name: t.name, type: t.type,
        commands: t.commands.map(c => ({ name: c.name, parameters: c.parameters })),
        dependencies: t.dependencies.map(d => d.name),
    })),
}));
